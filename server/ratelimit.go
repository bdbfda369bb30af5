package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/server/httpctx"
)

// RateLimits are ulule/limiter rates ("60-M": 60 per minute, "10-S", "1000-H").
// Every GraphQL operation, over HTTP or WebSocket, is charged before it runs:
//   - Anonymous: per client IP, every operation (login, the schema explorer);
//   - Operations: per user, every operation;
//   - Mutations: per user, each mutation weighted (mutationWeights);
//   - WebSocket: per user and operation name, operations sent over a socket.
//
// The login lockout (5 failures per account and IP per 15 min) is separate
// (auth.AuditLimiter).
type RateLimits struct {
	Anonymous  string
	Operations string
	Mutations  string
	WebSocket  string
}

// DefaultRateLimits are the production defaults (KORRIGO_RATE_ANONYMOUS,
// KORRIGO_RATE_OPERATIONS, KORRIGO_RATE_MUTATIONS, KORRIGO_RATE_WEBSOCKET).
// A corrector's desk autosaves and renews its lease every few seconds; an
// exam office imports in bulk: these leave room for both.
var DefaultRateLimits = RateLimits{Anonymous: "60-M", Operations: "1200-M", Mutations: "600-M", WebSocket: "120-M"}

// mutationWeights charge expensive mutations more than one unit (uploads and
// exports start jobs; password and token operations run argon2id).
var mutationWeights = map[string]int64{
	"uploadScan": 10, "importCopy": 10, "importStudents": 10, "exportGrades": 10, "dispatchCopies": 5,
	"finalizeCopy": 5, "createUser": 5, "resetUserPassword": 5, "changePassword": 5, "createApiToken": 5,
}

// loadRateLimits reads the KORRIGO_RATE_* variables and KORRIGO_TRUSTED_PROXIES.
func loadRateLimits(get func(k, def string) string) (RateLimits, []netip.Prefix, error) {
	r := RateLimits{
		Anonymous:  get("KORRIGO_RATE_ANONYMOUS", DefaultRateLimits.Anonymous),
		Operations: get("KORRIGO_RATE_OPERATIONS", DefaultRateLimits.Operations),
		Mutations:  get("KORRIGO_RATE_MUTATIONS", DefaultRateLimits.Mutations),
		WebSocket:  get("KORRIGO_RATE_WEBSOCKET", DefaultRateLimits.WebSocket),
	}
	var errs []error
	for name, v := range map[string]string{"KORRIGO_RATE_ANONYMOUS": r.Anonymous, "KORRIGO_RATE_OPERATIONS": r.Operations,
		"KORRIGO_RATE_MUTATIONS": r.Mutations, "KORRIGO_RATE_WEBSOCKET": r.WebSocket} {
		if _, err := limiter.NewRateFromFormatted(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a rate such as 60-M", name, v))
		}
	}
	proxies, err := ParseTrustedProxies(get("KORRIGO_TRUSTED_PROXIES", ""))
	if err != nil {
		errs = append(errs, err)
	}
	return r, proxies, errors.Join(errs...)
}

// ParseTrustedProxies reads a comma-separated list of IPs and CIDR prefixes.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("KORRIGO_TRUSTED_PROXIES: %q is neither an IP nor a CIDR prefix", part)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

type clientIPKey struct{}

// withClientIP resolves the client's address once per request: the peer,
// unless the peer is a trusted proxy, in which case X-Forwarded-For is read
// from the right, skipping trusted proxies; the first untrusted hop is the
// client (the left part of the header is whatever the client claimed).
func withClientIP(trusted []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := resolveClientIP(r, trusted)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey{}, ip)))
	})
}

func resolveClientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // garbage: stop at the last proxy we trust
		}
		a = a.Unmap()
		if !isTrusted(a, trusted) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// rateLimiter holds one limiter per rule over a shared store.
type rateLimiter struct {
	anonymous, operations, mutations, websocket *limiter.Limiter
	log                                         *zap.Logger
	close                                       func() error
	// collectors are the limiter's own metrics (Redis failover).
	collectors []prometheus.Collector
}

func newRateLimiter(cfg Config, log *zap.Logger) (*rateLimiter, error) {
	rl := &rateLimiter{log: log, close: func() error { return nil }}
	opts := limiter.StoreOptions{Prefix: "korrigo:rate", CleanUpInterval: time.Minute}
	var store limiter.Store
	if cfg.RedisURL != "" {
		fs, client, err := newRedisRateStore(cfg.RedisURL, opts, log)
		if err != nil {
			return nil, err
		}
		store, rl.close = fs, client.Close
		rl.collectors = append(rl.collectors, fs.fallbacks)
	} else {
		store = memory.NewStoreWithOptions(opts)
	}
	limits := cfg.RateLimits
	if limits == (RateLimits{}) {
		limits = DefaultRateLimits
	}
	for _, x := range []struct {
		dst  **limiter.Limiter
		rate string
	}{{&rl.anonymous, limits.Anonymous}, {&rl.operations, limits.Operations}, {&rl.mutations, limits.Mutations}, {&rl.websocket, limits.WebSocket}} {
		rate, err := limiter.NewRateFromFormatted(x.rate)
		if err != nil {
			return nil, fmt.Errorf("rate limits: %q: %w", x.rate, err)
		}
		*x.dst = limiter.New(store, rate)
	}
	return rl, nil
}

// httpRate is the HTTP side of the rate limits of one request: the headers to
// send and whether the answer is 429.
type httpRate struct {
	websocket bool
	mu        sync.Mutex // markLimited may run from the error presenter of concurrent fields
	limited   bool
	header    http.Header
}

// markLimited turns the HTTP response to a refused operation into a 429 with
// Retry-After, whoever refused it: the limiter below, or the login lockout (a
// typed RATE_LIMITED from the auth service, seen by the error presenter).
func markLimited(ctx context.Context, retryAfter int64) {
	st, _ := ctx.Value(httpRateKey{}).(*httpRate)
	if st == nil || st.websocket {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.limited = true
	st.header.Set("Retry-After", strconv.FormatInt(retryAfter, 10))
}

type httpRateKey struct{}

// overWebSocket reports whether ctx is an operation sent over a WebSocket (one
// HTTP request carries every operation of the socket).
func overWebSocket(ctx context.Context) bool {
	st, _ := ctx.Value(httpRateKey{}).(*httpRate)
	return st != nil && st.websocket
}

// withRateHeaders lets the GraphQL rate-limit extension answer HTTP requests
// with X-RateLimit-* headers and, when refused, 429 and Retry-After (gqlgen
// itself writes 200 for an operation refused before execution).
func withRateHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &httpRate{websocket: strings.EqualFold(r.Header.Get("Upgrade"), "websocket"), header: http.Header{}}
		ctx := context.WithValue(r.Context(), httpRateKey{}, st)
		if st.websocket {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		next.ServeHTTP(&rateWriter{ResponseWriter: w, st: st}, r.WithContext(ctx))
	})
}

type rateWriter struct {
	http.ResponseWriter
	st          *httpRate
	wroteHeader bool
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *rateWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *rateWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	for k, v := range w.st.header {
		w.Header()[k] = v
	}
	if w.st.limited && code < 300 {
		code = http.StatusTooManyRequests
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *rateWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// rateLimitExt charges operations: everyone before parsing (so invalid
// documents count too), mutations and WebSocket operations once the document
// tells what they are.
type rateLimitExt struct{ rl *rateLimiter }

var (
	_ graphql.OperationParameterMutator = rateLimitExt{}
	_ graphql.OperationContextMutator   = rateLimitExt{}
)

func (rateLimitExt) ExtensionName() string                   { return "RateLimits" }
func (rateLimitExt) Validate(graphql.ExecutableSchema) error { return nil }

func (e rateLimitExt) MutateOperationParameters(ctx context.Context, _ *graphql.RawParams) *gqlerror.Error {
	if v := viewer.FromContext(ctx); v != nil {
		return e.charge(ctx, e.rl.operations, "op:"+v.UserID, 1)
	}
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return e.charge(ctx, e.rl.anonymous, "ip:"+ip, 1)
}

func (e rateLimitExt) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	v := viewer.FromContext(ctx)
	if v == nil || oc.Operation == nil {
		return nil
	}
	if oc.Operation.Operation == ast.Mutation {
		var weight int64
		for _, sel := range oc.Operation.SelectionSet {
			if f, ok := sel.(*ast.Field); ok {
				w := mutationWeights[f.Name]
				weight += max(w, 1)
			}
		}
		if err := e.charge(ctx, e.rl.mutations, "mut:"+v.UserID, max(weight, 1)); err != nil {
			return err
		}
	}
	if st, _ := ctx.Value(httpRateKey{}).(*httpRate); st != nil && st.websocket {
		return e.charge(ctx, e.rl.websocket, "ws:"+v.UserID+":"+operationKey(oc.Operation), 1)
	}
	return nil
}

// operationKey names an operation for the per-operation WebSocket limit: its
// name, or its root fields when it has none.
func operationKey(op *ast.OperationDefinition) string {
	if op.Name != "" {
		return string(op.Operation) + ":" + op.Name
	}
	names := make([]string, 0, len(op.SelectionSet))
	for _, sel := range op.SelectionSet {
		if f, ok := sel.(*ast.Field); ok {
			names = append(names, f.Name)
		}
	}
	return string(op.Operation) + ":" + strings.Join(names, ",")
}

// charge counts weight against key; over the limit it answers RATE_LIMITED
// with retryAfter (seconds). A Redis outage is absorbed by the store
// (failoverStore counts in memory); an error here is unexpected and lets the
// request through after logging it.
func (e rateLimitExt) charge(ctx context.Context, l *limiter.Limiter, key string, weight int64) *gqlerror.Error {
	c, err := l.Increment(ctx, key, weight)
	if err != nil {
		e.rl.log.Warn("rate limit store", zap.Error(err), zap.String("request_id", httpctx.RequestID(ctx)))
		return nil
	}
	retry := max(c.Reset-time.Now().Unix(), 1)
	st, _ := ctx.Value(httpRateKey{}).(*httpRate)
	if st != nil && !st.websocket {
		// The most constrained bucket charged so far is the one reported.
		if rem, err := strconv.ParseInt(st.header.Get("X-RateLimit-Remaining"), 10, 64); err != nil || c.Remaining <= rem || c.Reached {
			st.header.Set("X-RateLimit-Limit", strconv.FormatInt(c.Limit, 10))
			st.header.Set("X-RateLimit-Remaining", strconv.FormatInt(c.Remaining, 10))
			st.header.Set("X-RateLimit-Reset", strconv.FormatInt(c.Reset, 10))
		}
	}
	if !c.Reached {
		return nil
	}
	markLimited(ctx, retry)
	return &gqlerror.Error{
		Message:    fmt.Sprintf("too many requests; try again in %d seconds", retry),
		Extensions: map[string]any{"code": string(apperr.RateLimited), "retryAfter": retry},
	}
}
