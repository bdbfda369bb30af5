package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/korrigo/korrigo/realtime"
)

// subscriber is one tapped subscription whose "gqlgen" renders the event it
// is fed with render.
type subscriber struct {
	t   *tap
	out <-chan *realtime.CopyLockEvent
	src chan *realtime.CopyLockEvent
}

func newSubscriber(key renderKey) *subscriber {
	s := &subscriber{t: &tap{key: key}, src: make(chan *realtime.CopyLockEvent, 1)}
	s.out = s.t.attach((<-chan *realtime.CopyLockEvent)(s.src)).(<-chan *realtime.CopyLockEvent)
	return s
}

type renderer struct {
	calls atomic.Int64
	// resp builds gqlgen's response for an event; nil: plain data.
	resp func(ev *realtime.CopyLockEvent) *graphql.Response
}

// respond runs the response interceptor for ev as gqlgen would, gqlgen's
// rendering being r's.
func (s *subscriber) respond(sr sharedRenders, r *renderer, ev *realtime.CopyLockEvent) *graphql.Response {
	s.t.staged = ev
	ctx := context.WithValue(context.Background(), tapKey{}, s.t)
	return sr.InterceptResponse(ctx, func(context.Context) *graphql.Response {
		got := <-s.out
		r.calls.Add(1)
		if r.resp != nil {
			return r.resp(got)
		}
		// gqlgen renders into a buffer it reuses for the next event.
		buf := []byte(fmt.Sprintf(`{"copyLockChanged":{"kind":%q,"copyId":%q}}`, got.Kind, *got.CopyID))
		return &graphql.Response{Data: buf, Extensions: map[string]any{}} // as gqlgen: never nil
	})
}

func lockEvent(kind realtime.CopyLockEventKind) *realtime.CopyLockEvent {
	id := "cpy_1"
	return &realtime.CopyLockEvent{Kind: kind, ExamID: "exm_1", CopyID: &id, At: time.Now()}
}

var teacherKey = renderKey{operation: [32]byte{1}, class: "TEACHER|session"}

// Many subscribers of one operation and class, woken by one shared event at
// once: it is rendered once, and every one of them gets those bytes.
func TestSharedRenderOncePerEvent(t *testing.T) {
	sr, r := newSharedRenders(nil), &renderer{}
	ev := lockEvent(realtime.LockAcquired)
	const n = 50
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = string(newSubscriber(teacherKey).respond(sr, r, ev).Data)
		}()
	}
	wg.Wait()
	if c := r.calls.Load(); c != 1 {
		t.Fatalf("rendered %d times, want once", c)
	}
	want := `{"copyLockChanged":{"kind":"ACQUIRED","copyId":"cpy_1"}}`
	for i, g := range got {
		if g != want {
			t.Fatalf("subscriber %d got %s, want %s", i, g, want)
		}
	}
	// Another event is rendered anew.
	if g := string(newSubscriber(teacherKey).respond(sr, r, lockEvent(realtime.LockReleased)).Data); g !=
		`{"copyLockChanged":{"kind":"RELEASED","copyId":"cpy_1"}}` || r.calls.Load() != 2 {
		t.Fatalf("next event: %s after %d renders", g, r.calls.Load())
	}
}

// What a render depends on besides the event keeps renders apart: another
// operation or variables, another viewer class.
func TestSharedRenderKeyedByOperationAndClass(t *testing.T) {
	sr, r := newSharedRenders(nil), &renderer{}
	ev := lockEvent(realtime.LockAcquired)
	keys := []renderKey{
		teacherKey,
		{operation: [32]byte{2}, class: teacherKey.class},
		{operation: teacherKey.operation, class: "ADMIN|session"},
		{operation: teacherKey.operation, class: "TEACHER|locks:read"},
	}
	for _, k := range keys {
		newSubscriber(k).respond(sr, r, ev)
		newSubscriber(k).respond(sr, r, ev)
	}
	if c := r.calls.Load(); c != int64(len(keys)) {
		t.Fatalf("rendered %d times for %d keys", c, len(keys))
	}
}

// Snapshots are built per subscriber: never shared, always rendered.
func TestSharedRenderSkipsSnapshots(t *testing.T) {
	sr, r := newSharedRenders(nil), &renderer{}
	snap := lockEvent(realtime.LockSnapshot)
	newSubscriber(teacherKey).respond(sr, r, snap)
	newSubscriber(teacherKey).respond(sr, r, snap)
	if c := r.calls.Load(); c != 2 {
		t.Fatalf("snapshot rendered %d times for 2 subscribers", c)
	}
}

// A render with errors or extensions, or one that ran viewer-dependent code,
// is not handed to anybody else.
func TestSharedRenderNotCached(t *testing.T) {
	for name, resp := range map[string]func(*subscriber) func(*realtime.CopyLockEvent) *graphql.Response{
		"errors": func(*subscriber) func(*realtime.CopyLockEvent) *graphql.Response {
			return func(*realtime.CopyLockEvent) *graphql.Response {
				return &graphql.Response{Data: []byte(`null`), Errors: gqlerror.List{{Message: "boom"}}}
			}
		},
		"extensions": func(*subscriber) func(*realtime.CopyLockEvent) *graphql.Response { // gqlgen's own: never nil
			return func(*realtime.CopyLockEvent) *graphql.Response {
				return &graphql.Response{Data: []byte(`{}`), Extensions: map[string]any{"x": 1}}
			}
		},
		"viewer-dependent field": func(s *subscriber) func(*realtime.CopyLockEvent) *graphql.Response {
			return func(*realtime.CopyLockEvent) *graphql.Response {
				s.t.dependent.Store(true) // what InterceptField records
				return &graphql.Response{Data: []byte(`{}`)}
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			sr, r := newSharedRenders(nil), &renderer{}
			ev := lockEvent(realtime.LockAcquired)
			first := newSubscriber(teacherKey)
			r.resp = resp(first)
			first.respond(sr, r, ev)
			r.resp = nil
			if g := newSubscriber(teacherKey).respond(sr, r, ev); string(g.Data) !=
				`{"copyLockChanged":{"kind":"ACQUIRED","copyId":"cpy_1"}}` || r.calls.Load() != 2 {
				t.Fatalf("second subscriber got %s after %d renders; want its own render", g.Data, r.calls.Load())
			}
		})
	}
}

// The cache forgets the oldest events; a forgotten event is rendered again.
func TestSharedRenderEviction(t *testing.T) {
	sr, r := sharedRenders{cache: newRenderCache(2)}, &renderer{}
	a, b, c := lockEvent(realtime.LockAcquired), lockEvent(realtime.LockReleased), lockEvent(realtime.LockExpired)
	for _, ev := range []*realtime.CopyLockEvent{a, b, c, a} {
		newSubscriber(teacherKey).respond(sr, r, ev)
	}
	if n := r.calls.Load(); n != 4 {
		t.Fatalf("%d renders, want 4 (a was evicted by c)", n)
	}
	if len(sr.cache.entries) != 2 {
		t.Fatalf("%d events cached, want 2", len(sr.cache.entries))
	}
}

func TestViewerDependent(t *testing.T) {
	field := func(directives ...string) graphql.CollectedField {
		f := graphql.CollectedField{Field: &ast.Field{Definition: &ast.FieldDefinition{}}}
		for _, d := range directives {
			f.Directives = append(f.Directives, &ast.Directive{Name: d})
		}
		return f
	}
	withDefinitionDirective := field()
	withDefinitionDirective.Definition.Directives = ast.DirectiveList{{Name: "hasRole"}}
	for _, tc := range []struct {
		name string
		fc   *graphql.FieldContext
		want bool
	}{
		{"struct field", &graphql.FieldContext{Field: field()}, false},
		{"@include", &graphql.FieldContext{Field: field("include", "skip")}, false},
		{"resolver", &graphql.FieldContext{Field: field(), IsResolver: true}, true},
		{"method", &graphql.FieldContext{Field: field(), IsMethod: true}, true},
		{"query directive", &graphql.FieldContext{Field: field("custom")}, true},
		{"schema directive", &graphql.FieldContext{Field: withDefinitionDirective}, true},
	} {
		if got := viewerDependent(tc.fc); got != tc.want {
			t.Errorf("%s: viewerDependent = %v, want %v", tc.name, got, tc.want)
		}
	}
}
