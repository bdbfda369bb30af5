package graph

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/privacy"
	"github.com/korrigo/korrigo/ids"
)

// Page sizes of Relay connections (DESIGN.md §11).
const (
	maxPageSize     = 100
	defaultPageSize = 50
)

// checkPage bounds first/last and applies the default page size, so a client that
// asks for no size does not read a whole table.
func checkPage(first **int, last *int) error {
	for name, v := range map[string]*int{"first": *first, "last": last} {
		if v != nil && (*v < 0 || *v > maxPageSize) {
			return apperr.BadField(name, "%s must be between 0 and %d", name, maxPageSize)
		}
	}
	if *first == nil && last == nil {
		n := defaultPageSize
		*first = &n
	}
	return nil
}

// node resolves any id through the privacy rules: an object the caller may not
// read is indistinguishable from one that does not exist.
func (r *Resolver) node(ctx context.Context, id string) (ent.Noder, error) {
	if _, err := ids.Table(id); err != nil {
		return nil, apperr.NotFoundf("no object with id %q", id)
	}
	n, err := r.Client.Noder(ctx, id, ent.WithNodeType(func(_ context.Context, id string) (string, error) {
		return ids.Table(id)
	}))
	if err != nil {
		return nil, hideDenied(err, id)
	}
	return n, nil
}

// nodes reads the ids of each type with one query (ent's Noders: the number of
// statements does not grow with the number of ids), through the same read rules
// as node(id). An id node(id) answers NOT_FOUND for is a null entry without an
// error, as a hidden object must look like a missing one; any other error fails
// the whole list.
func (r *Resolver) nodes(ctx context.Context, list []string) ([]ent.Noder, error) {
	if len(list) > maxPageSize {
		return nil, apperr.BadField("ids", "at most %d ids", maxPageSize)
	}
	out := make([]ent.Noder, len(list))
	var wellFormed []string
	var at []int // at[k] is the position in list of wellFormed[k]
	for i, id := range list {
		if _, err := ids.Table(id); err == nil {
			wellFormed = append(wellFormed, id)
			at = append(at, i)
		}
	}
	// Noders reports each id it could not read with graphql.AddError, into the
	// response. Those reports go to a response context of our own instead, so
	// that the list keeps its contract (above) rather than Noders' one (an
	// error per missing id).
	var mu sync.Mutex
	var failed error
	collect := graphql.WithResponseContext(ctx, func(_ context.Context, err error) *gqlerror.Error {
		mu.Lock()
		defer mu.Unlock()
		if failed == nil && !hidden(err) && !unresolved(err) {
			failed = err
		}
		return nil
	}, graphql.DefaultRecover)
	found, err := r.Client.Noders(collect, wellFormed, ent.WithNodeType(func(_ context.Context, id string) (string, error) {
		return ids.Table(id)
	}))
	if err != nil && !hidden(err) { // one id: Noders returns node(id)'s error
		return nil, fmt.Errorf("nodes: %w", err)
	}
	if failed != nil {
		if gqlErr, ok := errors.AsType[*gqlerror.Error](failed); ok && gqlErr.Err != nil {
			failed = gqlErr.Err // the path Noders gave it is inside the list we drop
		}
		return nil, fmt.Errorf("nodes: %w", failed)
	}
	for k, n := range found {
		out[at[k]] = n
	}
	return out, nil
}

// hideDenied maps "not found" and "denied by privacy" to the same NOT_FOUND.
func hideDenied(err error, id string) error {
	if hidden(err) {
		return apperr.NotFoundf("no object with id %q", id)
	}
	return err
}

// unresolved reports the error Noders gives an id its query did not return (not
// there, or filtered out by the read rules).
func unresolved(err error) bool {
	gqlErr, ok := errors.AsType[*gqlerror.Error](err)
	return ok && gqlErr.Extensions["code"] == "NOT_FOUND"
}

// hidden reports an error node(id) answers NOT_FOUND for.
func hidden(err error) bool {
	var nf *ent.NotFoundError
	return errors.As(err, &nf) || isDenied(err)
}

func isDenied(err error) bool { return errors.Is(err, privacy.Deny) }
