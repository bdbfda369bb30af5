package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/korrigo/korrigo/apperr"
)

// QueryLimits are the static limits of DESIGN.md §11, checked before a
// resolver runs, over HTTP and WebSocket alike. A violation is
// QUERY_TOO_COMPLEX with extensions {rule, limit, value}.
type QueryLimits struct {
	MaxDepth      int // nested field levels, leaves included: `{ me { name } }` is 2
	MaxAliases    int // aliased fields in the executed operation, fragments expanded
	MaxComplexity int // see complexityOf
	MaxQueryBytes int // document length in bytes
	MaxPageSize   int // first / last
}

// DefaultQueryLimits are the contract's numbers.
var DefaultQueryLimits = QueryLimits{
	MaxDepth: 10, MaxAliases: 15, MaxComplexity: MaxComplexity, MaxQueryBytes: MaxQueryBytes, MaxPageSize: 100,
}

// Cost model.
const (
	// defaultConnectionSize is what a connection without first/last returns
	// (graph/paging.go).
	defaultConnectionSize = 50
	// unpagedListSize is the assumed length of a list of objects that takes no
	// page size (a copy's annotations, scores): they are short, but not free.
	unpagedListSize = 10
)

func tooComplex(rule string, limit, value int, format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{
		Message:    fmt.Sprintf(format, args...),
		Extensions: map[string]any{"code": string(apperr.QueryTooComplex), "rule": rule, "limit": limit, "value": value},
	}
}

// queryLimitsExt is a gqlgen handler extension: the length is checked before
// parsing, the rest once the document is validated.
type queryLimitsExt struct {
	limits QueryLimits
	es     graphql.ExecutableSchema
}

var (
	_ graphql.HandlerExtension          = queryLimitsExt{}
	_ graphql.OperationParameterMutator = queryLimitsExt{}
	_ graphql.OperationContextMutator   = queryLimitsExt{}
)

func (queryLimitsExt) ExtensionName() string                   { return "QueryLimits" }
func (queryLimitsExt) Validate(graphql.ExecutableSchema) error { return nil }

func (q queryLimitsExt) MutateOperationParameters(_ context.Context, p *graphql.RawParams) *gqlerror.Error {
	if n := len(p.Query); n > q.limits.MaxQueryBytes {
		return tooComplex("length", q.limits.MaxQueryBytes, n,
			"the query is %d characters long; the limit is %d", n, q.limits.MaxQueryBytes)
	}
	return nil
}

func (q queryLimitsExt) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	m := measurer{schema: q.es.Schema(), es: q.es, ctx: ctx, vars: oc.Variables, limits: q.limits,
		frags: map[string]measure{}}
	got := m.selectionSet(oc.Operation.SelectionSet, false)
	if m.err != nil {
		return m.err
	}
	l := q.limits
	switch {
	case got.depth > l.MaxDepth:
		return tooComplex("depth", l.MaxDepth, got.depth, "the query is %d levels deep; the limit is %d", got.depth, l.MaxDepth)
	case got.aliases > l.MaxAliases:
		return tooComplex("aliases", l.MaxAliases, got.aliases, "the query has %d aliases; the limit is %d", got.aliases, l.MaxAliases)
	case got.complexity > l.MaxComplexity:
		return tooComplex("complexity", l.MaxComplexity, got.complexity,
			"the query has complexity %d; the limit is %d (lists count first/last)", got.complexity, l.MaxComplexity)
	}
	return nil
}

type measure struct {
	depth, aliases, complexity int
	// items is the part of complexity spent in fields named edges or nodes at
	// this level: what a connection multiplies by its page size.
	items int
}

// measurer walks the executed operation once. Fragment results are memoized
// by name, so a "fragment bomb" (each fragment spreading the next twice) costs
// linear time to measure, while its measured size grows exponentially and is
// refused.
type measurer struct {
	schema *ast.Schema
	es     graphql.ExecutableSchema
	ctx    context.Context
	vars   map[string]any
	limits QueryLimits
	frags  map[string]measure
	err    *gqlerror.Error
}

func (m *measurer) selectionSet(set ast.SelectionSet, introspection bool) measure {
	var out measure
	for _, sel := range set {
		var got measure
		switch s := sel.(type) {
		case *ast.Field:
			got = m.field(s, introspection)
		case *ast.InlineFragment:
			got = m.selectionSet(s.SelectionSet, introspection)
		case *ast.FragmentSpread:
			memo, ok := m.frags[s.Name]
			if !ok && s.Definition != nil {
				memo = m.selectionSet(s.Definition.SelectionSet, introspection)
				m.frags[s.Name] = memo
			}
			got = memo
		}
		out.depth = max(out.depth, got.depth)
		out.aliases = satAdd(out.aliases, got.aliases)
		out.complexity = satAdd(out.complexity, got.complexity)
		if f, ok := sel.(*ast.Field); ok && (f.Name == "edges" || f.Name == "nodes") {
			got.items = got.complexity
		}
		out.items = satAdd(out.items, got.items)
	}
	return out
}

func (m *measurer) field(f *ast.Field, introspection bool) measure {
	if f.Name == "__typename" {
		return measure{depth: 1}
	}
	introspection = introspection || strings.HasPrefix(f.Name, "__")
	args := f.ArgumentMap(m.vars)
	n := m.pageSize(f, args)
	child := m.selectionSet(f.SelectionSet, introspection)

	out := measure{depth: child.depth + 1, aliases: child.aliases}
	// ofType walks a type's wrappers (at most [X!]! in this schema): it does
	// not nest data, so GraphiQL's introspection query (7 nested ofType) fits
	// the depth limit while fields→type→fields cycles do not.
	if introspection && f.Name == "ofType" {
		out.depth = child.depth
	}
	if f.Alias != "" && f.Alias != f.Name {
		out.aliases = satAdd(out.aliases, 1)
	}

	def := f.Definition
	var cost int
	switch {
	case def == nil:
		cost = satAdd(1, child.complexity)
	case isConnection(m.schema, def.Type):
		// A connection costs 1 + n × (its edges and nodes) + its other fields
		// (totalCount, pageInfo), which do not grow with n.
		cost = satAdd(1, satAdd(satMul(n, child.items), child.complexity-child.items))
	case def.Type.Elem != nil && len(f.SelectionSet) > 0 && !inConnection(f) && !introspection:
		// Introspection lists are not weighted: their length is the schema's,
		// and the depth limit stops fields→type→fields cycles.
		cost = satAdd(1, satMul(n, child.complexity))
	default:
		cost = satAdd(1, child.complexity)
	}
	if def != nil && f.ObjectDefinition != nil {
		if custom, ok := m.es.Complexity(m.ctx, f.ObjectDefinition.Name, f.Name, child.complexity, args); ok && custom >= 1 {
			cost = custom
		}
	}
	out.complexity = cost
	return out
}

// pageSize is how many items a list field returns at most: first/last when
// given (and refused above MaxPageSize), the number of ids for nodes(ids),
// the connection default otherwise.
func (m *measurer) pageSize(f *ast.Field, args map[string]any) int {
	n := -1
	for _, name := range []string{"first", "last"} {
		v, present := args[name]
		if !present || v == nil {
			continue
		}
		k, ok := toInt(v)
		if !ok {
			continue // the validator has refused a non-Int already
		}
		if k > m.limits.MaxPageSize && m.err == nil {
			m.err = tooComplex("pageSize", m.limits.MaxPageSize, k, "%s: %d is over the page size limit of %d", name, k, m.limits.MaxPageSize)
		}
		n = max(n, k)
	}
	if n >= 0 {
		return n
	}
	if ids, ok := args["ids"].([]any); ok {
		return len(ids)
	}
	if f.Definition != nil && isConnection(m.schema, f.Definition.Type) {
		return defaultConnectionSize
	}
	return unpagedListSize
}

// inConnection reports a connection's own edges or nodes list: the
// connection multiplies them by its page size already.
func inConnection(f *ast.Field) bool {
	return f.ObjectDefinition != nil && strings.HasSuffix(f.ObjectDefinition.Name, "Connection") &&
		(f.Name == "edges" || f.Name == "nodes")
}

func isConnection(s *ast.Schema, t *ast.Type) bool {
	if t == nil || t.Elem != nil {
		return false
	}
	def := s.Types[t.Name()]
	return def != nil && strings.HasSuffix(def.Name, "Connection") && def.Fields.ForName("edges") != nil
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int32:
		return int(x), true
	case int64:
		if x > math.MaxInt32 {
			return math.MaxInt32, true
		}
		return int(x), true
	case float64:
		return int(min(x, math.MaxInt32)), true
	case json.Number:
		i, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil {
			return 0, false
		}
		return toInt(i)
	}
	return 0, false
}

func satAdd(a, b int) int {
	if a < 0 {
		a = 0
	}
	if b < 0 {
		b = 0
	}
	if c := a + b; c >= a {
		return c
	}
	return math.MaxInt
}

func satMul(a, b int) int {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > math.MaxInt/b {
		return math.MaxInt
	}
	return a * b
}

// refuseBatches answers a JSON array body (a batch of operations) with
// QUERY_TOO_COMPLEX: one operation per request, batching is not enabled.
func refuseBatches(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || isMultipart(r) {
			next.ServeHTTP(w, r)
			return
		}
		br := bufio.NewReader(r.Body)
		for {
			b, err := br.Peek(1)
			if err != nil || (b[0] != ' ' && b[0] != '\t' && b[0] != '\r' && b[0] != '\n') {
				break
			}
			_, _ = br.ReadByte()
		}
		if b, err := br.Peek(1); err == nil && b[0] == '[' {
			var batch []json.RawMessage
			n := 0
			if json.NewDecoder(br).Decode(&batch) == nil {
				n = len(batch)
			}
			writeErrorExt(w, http.StatusBadRequest, apperr.QueryTooComplex,
				"batched operations are not accepted: send one operation per request",
				map[string]any{"rule": "operations", "limit": 1, "value": n})
			return
		}
		r.Body = readCloser{br, r.Body}
		next.ServeHTTP(w, r)
	})
}

type readCloser struct {
	*bufio.Reader
	c interface{ Close() error }
}

func (r readCloser) Close() error { return r.c.Close() }

// writeErrorExt is writeError with more extensions.
func writeErrorExt(w http.ResponseWriter, status int, code apperr.Code, msg string, ext map[string]any) {
	e := map[string]any{"code": code}
	for k, v := range ext {
		e[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"message": msg, "extensions": e}}})
}
