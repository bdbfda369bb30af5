package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/realtime"
)

// sharedRenders renders a realtime event once per (event, operation, viewer
// class) instead of once per subscriber: with N sockets subscribed to one
// exam, gqlgen would otherwise execute and marshal the same selection set on
// the same event N times.
//
// What a subscriber receives is unchanged. An event is rendered from a cache
// only if:
//   - it is shared (realtime's deltas: one read-only value per publish, handed
//     to every subscriber of the topic after the service's own per-viewer
//     filtering); snapshots, built per subscriber, are always rendered;
//   - the cached render was made for the same query document, operation name
//     and variables (hashed together) and the same viewer class (role and
//     token scopes);
//   - rendering it ran no field resolver, method or directive below the
//     subscription field (the event types are plain structs: what a field
//     shows depends on the event and the selection set only). A render that
//     did is not cached and its subscription renders every event itself;
//   - the render produced no error and no extensions.
//
// Mechanics, all in our layer over gqlgen's executor: the field interceptor
// swaps the subscription resolver's channel for one it feeds (tap); the
// operation interceptor receives the next event from the resolver's channel
// and stages it; the response interceptor, innermost so that every other
// middleware (metrics, logs, error codes) still sees every response, answers
// from the cache or feeds the event to gqlgen and caches what it rendered.
// When several subscribers miss at once, one renders and the others wait.
type sharedRenders struct {
	cache *renderCache
	// Subscription events by how they were rendered: by gqlgen for this
	// subscriber (own), or for another one (shared). Nil: not counted.
	ownCount, sharedCount prometheus.Counter
}

// newSharedRenders counts renders in renders (label "render"; nil: not counted).
func newSharedRenders(renders *prometheus.CounterVec) sharedRenders {
	s := sharedRenders{cache: newRenderCache(renderCacheEvents)}
	if renders != nil {
		s.ownCount, s.sharedCount = renders.WithLabelValues("own"), renders.WithLabelValues("shared")
	}
	return s
}

func count(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}

var (
	_ graphql.HandlerExtension     = sharedRenders{}
	_ graphql.OperationInterceptor = sharedRenders{}
	_ graphql.FieldInterceptor     = sharedRenders{}
	_ graphql.ResponseInterceptor  = sharedRenders{}
)

func (sharedRenders) ExtensionName() string                   { return "SharedSubscriptionRenders" }
func (sharedRenders) Validate(graphql.ExecutableSchema) error { return nil }

type tapKey struct{}

// tap is one subscription's hook into gqlgen's stream. Every method runs on
// the subscription's goroutine, except dependent (field resolution).
type tap struct {
	key    renderKey
	stream tapStream // nil until the subscription field's resolver returned a tappable channel
	staged any       // the event the response interceptor renders next
	// dependent: a render of this subscription ran viewer-dependent code.
	dependent atomic.Bool
}

// tapStream is a resolver's channel of events and the channel gqlgen reads.
type tapStream interface {
	recv(ctx context.Context) (ev any, open bool)
	feed(ev any)
	end()
}

type chanStream[T any] struct {
	src   <-chan T
	out   chan T
	ended bool
}

func (c *chanStream[T]) recv(ctx context.Context) (any, bool) {
	select {
	case ev, ok := <-c.src:
		if !ok {
			return nil, false
		}
		return ev, true
	case <-ctx.Done():
		return nil, true // gqlgen ends the stream on the cancelled context itself
	}
}

// feed hands ev to gqlgen, which reads it in the same response: the buffer of
// one is always empty here.
func (c *chanStream[T]) feed(ev any) {
	select {
	case c.out <- ev.(T):
	default:
	}
}

func (c *chanStream[T]) end() {
	if !c.ended {
		c.ended = true
		close(c.out)
	}
}

func tapChan[T any](t *tap, src <-chan T) <-chan T {
	s := &chanStream[T]{src: src, out: make(chan T, 1)}
	t.stream = s
	return s.out
}

// attach taps the streams whose events realtime shares between subscribers.
func (t *tap) attach(res any) any {
	switch ch := res.(type) {
	case <-chan *realtime.CopyLockEvent:
		return tapChan(t, ch)
	case <-chan *realtime.CopyStatusEvent:
		return tapChan(t, ch)
	}
	return res
}

func (s sharedRenders) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc == nil || oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
		return next(ctx)
	}
	key, ok := renderKeyOf(ctx, oc)
	if !ok {
		return next(ctx)
	}
	t := &tap{key: key}
	h := next(context.WithValue(ctx, tapKey{}, t))
	if t.stream == nil {
		return h
	}
	return func(ctx context.Context) *graphql.Response {
		// Waiting here rather than in gqlgen's executor also keeps the
		// stack of an idle subscription shallow.
		ev, open := t.stream.recv(ctx)
		if !open {
			t.stream.end() // gqlgen reads the end and completes
		}
		t.staged = ev
		return h(ctx)
	}
}

func (s sharedRenders) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return next(ctx)
	}
	if fc.Object == "Subscription" {
		res, err := next(ctx)
		if t, _ := ctx.Value(tapKey{}).(*tap); t != nil && err == nil && t.stream == nil {
			res = t.attach(res)
		}
		return res, err
	}
	if viewerDependent(fc) && underSubscription(fc) {
		if t, _ := ctx.Value(tapKey{}).(*tap); t != nil {
			t.dependent.Store(true)
		}
	}
	return next(ctx)
}

// viewerDependent reports whether resolving fc may run code that reads more
// than the parent value: a resolver, a method, a directive other than
// gqlgen's and the query's @skip and @include.
func viewerDependent(fc *graphql.FieldContext) bool {
	if fc.IsResolver || fc.IsMethod {
		return true
	}
	for _, d := range fc.Field.Directives {
		if d.Name != "skip" && d.Name != "include" {
			return true
		}
	}
	if def := fc.Field.Definition; def != nil {
		for _, d := range def.Directives {
			if !strings.HasPrefix(d.Name, "go") && d.Name != "deprecated" {
				return true
			}
		}
	}
	return false
}

func underSubscription(fc *graphql.FieldContext) bool {
	for ; fc != nil; fc = fc.Parent {
		if fc.Object == "Subscription" {
			return true
		}
	}
	return false
}

func (s sharedRenders) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	t, _ := ctx.Value(tapKey{}).(*tap)
	if t == nil || t.stream == nil || t.staged == nil {
		return next(ctx)
	}
	ev := t.staged
	t.staged = nil
	if !shared(ev) || t.dependent.Load() {
		return s.own(ctx, t, ev, next)
	}
	r, leader := s.cache.claim(ev, t.key)
	if !leader {
		if data, ok := r.wait(ctx); ok {
			count(s.sharedCount)
			// As gqlgen builds it: no errors, extensions empty, not nil.
			return &graphql.Response{Data: data, Extensions: map[string]any{}}
		}
		return s.own(ctx, t, ev, next) // the leader's render was not cacheable
	}
	var data []byte
	defer func() { r.settle(data) }() // also when next panics: waiters render themselves
	resp := s.own(ctx, t, ev, next)
	if resp != nil && len(resp.Errors) == 0 && len(resp.Extensions) == 0 && !t.dependent.Load() {
		// gqlgen reuses the buffer behind Data for the subscription's next event.
		data = bytes.Clone(resp.Data)
	}
	return resp
}

// own has gqlgen render ev for this subscriber.
func (s sharedRenders) own(ctx context.Context, t *tap, ev any, next graphql.ResponseHandler) *graphql.Response {
	t.stream.feed(ev)
	resp := next(ctx)
	if resp != nil {
		count(s.ownCount)
	}
	return resp
}

// shared reports whether ev is one value handed to every subscriber of its
// topic (a delta), not one built for a single subscriber (a snapshot).
func shared(ev any) bool {
	switch e := ev.(type) {
	case *realtime.CopyLockEvent:
		return e != nil && e.Kind != realtime.LockSnapshot
	case *realtime.CopyStatusEvent:
		return e != nil && e.Kind != realtime.StatusSnapshot
	}
	return false
}

// renderKey is what a render depends on besides the event: the operation
// (document, name, variables) and the viewer's class.
type renderKey struct {
	operation [sha256.Size]byte
	class     string
}

func renderKeyOf(ctx context.Context, oc *graphql.OperationContext) (renderKey, bool) {
	v := viewer.FromContext(ctx)
	if v == nil {
		return renderKey{}, false
	}
	vars, err := json.Marshal(oc.Variables) // map keys sorted: one encoding per value
	if err != nil {
		return renderKey{}, false
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(oc.RawQuery), []byte(oc.OperationName), vars} {
		_, _ = h.Write(part)
		_, _ = h.Write([]byte{0})
	}
	var k renderKey
	h.Sum(k.operation[:0])
	k.class = string(v.Role) + "|" + strings.Join(v.Scopes, ",")
	if v.Scopes == nil {
		k.class += "|session"
	}
	return k, true
}

// renderCacheEvents bounds the events the cache remembers: subscribers render
// an event within moments of its publish, so the recent ones are enough.
const renderCacheEvents = 256

// renderCache holds the renders of the last events. An entry keeps its event
// alive, so an event's address cannot be reused by another while its renders
// are cached.
type renderCache struct {
	mu      sync.Mutex
	entries map[any]map[renderKey]*render
	ring    []any // events in arrival order, for eviction
	next    int
}

type render struct {
	done chan struct{}
	data []byte // nil: not cacheable
}

func newRenderCache(events int) *renderCache {
	return &renderCache{entries: make(map[any]map[renderKey]*render, events), ring: make([]any, events)}
}

// claim returns the render of (ev, key); leader reports that the caller must
// produce it and settle it.
func (c *renderCache) claim(ev any, key renderKey) (r *render, leader bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	renders, ok := c.entries[ev]
	if !ok {
		if old := c.ring[c.next]; old != nil {
			delete(c.entries, old)
		}
		c.ring[c.next] = ev
		c.next = (c.next + 1) % len(c.ring)
		renders = make(map[renderKey]*render, 1)
		c.entries[ev] = renders
	}
	if r, ok := renders[key]; ok {
		return r, false
	}
	r = &render{done: make(chan struct{})}
	renders[key] = r
	return r, true
}

func (r *render) settle(data []byte) {
	r.data = data
	close(r.done)
}

// wait returns the leader's render; false if it was not cacheable or ctx ended.
func (r *render) wait(ctx context.Context) ([]byte, bool) {
	select {
	case <-r.done:
		return r.data, r.data != nil
	case <-ctx.Done():
		return nil, false
	}
}
