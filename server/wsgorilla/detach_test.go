package wsgorilla_test

import (
	"context"
	"net/http"
	"reflect"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"

	"github.com/korrigo/korrigo/server/wsgorilla"
)

func detach(onPanic func(context.Context, any)) func(transport.Websocket) graphql.Transport {
	return func(ws transport.Websocket) graphql.Transport {
		return wsgorilla.Detach(ws, wsgorilla.DetachOptions{OnPanic: onPanic})
	}
}

// eventually polls cond; the bound only keeps a broken build from hanging.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gqlgen serves a socket inside the HTTP handler that upgraded it; Detach
// returns from the handler and the socket keeps working.
func TestDetachReturnsFromHandler(t *testing.T) {
	attached := newEnv(t, wsgorilla.Options{}, nil)
	c := attached.connect(transportWS)
	attached.subscribe(c, transportWS, "1")
	if n := attached.inHandler.Load(); n != 1 {
		t.Fatalf("without Detach, %d handlers run for one socket; want 1 (the test's premise)", n)
	}

	e := newEnvWith(t, wsgorilla.Options{}, nil, detach(nil))
	c = e.connect(transportWS)
	e.subscribe(c, transportWS, "1")
	eventually(t, "the upgrade handler to return", func() bool { return e.inHandler.Load() == 0 })
	e.gql.SendNextSubscriptionMessage()
	if m := expect(t, c, "next", "1"); string(m.Payload) != `{"data":{"name":"test"}}` {
		t.Fatalf("next payload %s", m.Payload)
	}
	send(t, c, msg{Type: "ping"})
	expect(t, c, "pong", "")
	e.gql.SendCompleteSubscriptionMessage()
	expect(t, c, "complete", "1")
}

// Every goroutine a detached socket starts ends with it: the socket's loop,
// gqlgen's closeOnCancel and one per subscription, nothing else.
func TestDetachGoroutinesPerSocket(t *testing.T) {
	e := newEnvWith(t, wsgorilla.Options{}, nil, detach(nil))
	warm := e.connect(transportWS) // the server's own goroutines (accept loop…)
	e.subscribe(warm, transportWS, "1")
	before := runtime.NumGoroutine()

	const n = 20
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = e.connect(transportWS)
		e.subscribe(conns[i], transportWS, "1")
	}
	eventually(t, "the upgrade handlers to return", func() bool { return e.inHandler.Load() == 0 })
	// The client's side of each socket parks no goroutine (gorilla reads
	// only when asked), so the delta is the server's. Waited for: net/http's
	// connection goroutine outlives the hijacking handler by a moment, and
	// make test once counted one (3.05 per socket); what must hold is the
	// steady state.
	perSocket := func() float64 { return float64(runtime.NumGoroutine()-before) / n }
	eventually(t, "at most 3 goroutines per socket with one subscription", func() bool { return perSocket() <= 3 })
	for _, c := range conns {
		_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
		_ = c.Close()
	}
	eventually(t, "the sockets' goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// Cancelling the server context closes every detached socket, before and
// after connection_init, as it closes sockets served in their handler.
func TestDetachShutdown(t *testing.T) {
	e := newEnvWith(t, wsgorilla.Options{}, nil, detach(nil))
	running := e.connect(transportWS)
	e.subscribe(running, transportWS, "1")
	waiting := e.dial(transportWS) // no connection_init yet
	eventually(t, "the upgrade handlers to return", func() bool { return e.inHandler.Load() == 0 })

	e.shutdown()
	e.await(e.ended, "the subscription to end")
	expectClose(t, running, 1000, "terminated")
	expectClose(t, waiting, 1001, "server shutting down")
}

// The context a detached socket runs under (InitFunc's, which the server's
// credential re-check watches) ends when the socket closes.
func TestDetachContextEndsWithSocket(t *testing.T) {
	inits := make(chan context.Context, 1)
	e := newEnvWith(t, wsgorilla.Options{}, func(ws *transport.Websocket) {
		ws.InitFunc = func(ctx context.Context, _ transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			inits <- ctx
			return ctx, nil, nil
		}
	}, detach(nil))
	c := e.connect(transportWS)
	ctx := <-inits
	eventually(t, "the upgrade handler to return", func() bool { return e.inHandler.Load() == 0 })
	if err := ctx.Err(); err != nil {
		t.Fatalf("the socket's context ended with its handler: %v", err)
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	select {
	case <-ctx.Done():
	case <-time.After(wait):
		t.Fatal("the socket's context outlived the socket")
	}
}

// A panic on a detached socket's goroutine (no HTTP recover above it any
// more) closes that socket and is reported; the server keeps serving.
func TestDetachPanic(t *testing.T) {
	var reported atomic.Value
	var panicked atomic.Bool
	e := newEnvWith(t, wsgorilla.Options{}, func(ws *transport.Websocket) {
		ws.InitFunc = func(ctx context.Context, _ transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			if !panicked.Swap(true) {
				panic("boom")
			}
			return ctx, nil, nil
		}
	}, detach(func(_ context.Context, p any) { reported.Store(p) }))
	c := e.dial(transportWS)
	send(t, c, msg{Type: "connection_init"})
	_ = c.SetReadDeadline(time.Now().Add(wait))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("the socket whose goroutine panicked stayed open")
	}
	eventually(t, "the panic to be reported", func() bool { return reported.Load() == "boom" })
	e.connect(transportWS)
}

// Once upgraded, gqlgen gets a copy of the request with no headers: it hands
// the request's headers to every operation and would keep all of them
// (cookies included) for the socket's life. Upgraded sees the socket's
// context, which outlives the handler.
func TestDetachKeepsNoHeaders(t *testing.T) {
	upgraded := make(chan context.Context, 1)
	opHeaders := make(chan http.Header, 1)
	e := newEnvWith(t, wsgorilla.Options{}, nil, func(ws transport.Websocket) graphql.Transport {
		return wsgorilla.Detach(ws, wsgorilla.DetachOptions{Upgraded: func(ctx context.Context) { upgraded <- ctx }})
	})
	e.gql.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		opHeaders <- graphql.GetOperationContext(ctx).Headers
		return next(ctx)
	})
	h := http.Header{"User-Agent": {"korrigo-test/1"}, "Cookie": {"korrigo_session=secret"}, "X-Other": {"1"}}
	c, _, err := e.dialHeader(h, transportWS)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c, msg{Type: "connection_init"})
	expect(t, c, "connection_ack", "")
	e.subscribe(c, transportWS, "1")

	if got := <-opHeaders; !reflect.DeepEqual(got, http.Header{}) {
		t.Fatalf("an operation on the socket sees headers %v; want none", got)
	}
	ctx := <-upgraded
	eventually(t, "the upgrade handler to return", func() bool { return e.inHandler.Load() == 0 })
	if err := ctx.Err(); err != nil {
		t.Fatalf("Upgraded got a context that ended with the handler: %v", err)
	}
}
