package wsgorilla_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/testserver"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/korrigo/korrigo/server/wsgorilla"
)

const (
	transportWS = "graphql-transport-ws"
	legacyWS    = "graphql-ws"

	// wait bounds every blocking step so a broken build fails instead of
	// hanging; it is never what a test asserts.
	wait = 10 * time.Second
)

// env is one gqlgen test server behind httptest, with signals for the
// subscription resolver's life cycle and the codes gqlgen closed with.
type env struct {
	t        *testing.T
	gql      *testserver.TestServer
	srv      *httptest.Server
	shutdown context.CancelFunc // cancels the server's BaseContext
	started  chan struct{}      // a subscription resolver began waiting for events
	ended    chan struct{}      // a subscription resolver returned
	closed   chan int           // transport.Websocket.CloseFunc codes
	// inHandler counts the HTTP handlers running (a socket served by gqlgen
	// keeps its handler running).
	inHandler atomic.Int64
}

func newEnv(t *testing.T, opts wsgorilla.Options, configure func(*transport.Websocket)) *env {
	t.Helper()
	return newEnvWith(t, opts, configure, nil)
}

// newEnvWith is newEnv with the transport wrapped by wrap (wsgorilla.Detach);
// nil serves it as gqlgen does, on the HTTP handler's goroutine.
func newEnvWith(t *testing.T, opts wsgorilla.Options, configure func(*transport.Websocket),
	wrap func(transport.Websocket) graphql.Transport) *env {
	t.Helper()
	e := &env{
		t:       t,
		gql:     testserver.New(),
		started: make(chan struct{}, 64),
		ended:   make(chan struct{}, 64),
		closed:  make(chan int, 64),
	}
	ws := transport.Websocket{
		Implementation: wsgorilla.New(opts),
		CloseFunc:      func(_ context.Context, code int) { signal(e.closed, code) },
	}
	if configure != nil {
		configure(&ws)
	}
	if wrap != nil {
		e.gql.AddTransport(wrap(ws))
	} else {
		e.gql.AddTransport(ws)
	}
	e.gql.AroundOperations(e.trackSubscriptions)

	base, cancel := context.WithCancel(context.Background())
	e.shutdown = cancel
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.inHandler.Add(1)
		defer e.inHandler.Add(-1)
		e.gql.ServeHTTP(w, r)
	}))
	base = wsgorilla.WithServerContext(base)
	e.srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	e.srv.Start()
	t.Cleanup(func() {
		cancel()
		e.srv.Close()
	})
	return e
}

func (e *env) trackSubscriptions(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	h := next(ctx)
	if graphql.GetOperationContext(ctx).Operation.Operation != ast.Subscription {
		return h
	}
	first := true
	return func(ctx context.Context) *graphql.Response {
		if first {
			first = false
			signal(e.started, struct{}{})
		}
		resp := h(ctx)
		if resp == nil {
			signal(e.ended, struct{}{})
		}
		return resp
	}
}

func signal[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

func (e *env) await(ch chan struct{}, what string) {
	e.t.Helper()
	select {
	case <-ch:
	case <-time.After(wait):
		e.t.Fatalf("timed out waiting for %s", what)
	}
}

func (e *env) awaitClosed() int {
	e.t.Helper()
	select {
	case code := <-e.closed:
		return code
	case <-time.After(wait):
		e.t.Fatal("timed out waiting for gqlgen's CloseFunc")
		return 0
	}
}

func (e *env) wsURL() string { return "ws" + strings.TrimPrefix(e.srv.URL, "http") }

func (e *env) dialHeader(header http.Header, protocols ...string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: wait}
	c, resp, err := d.Dial(e.wsURL(), header)
	if c != nil {
		e.t.Cleanup(func() { _ = c.Close() })
	}
	return c, resp, err
}

func (e *env) dial(protocols ...string) *websocket.Conn {
	e.t.Helper()
	c, _, err := e.dialHeader(nil, protocols...)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	return c
}

// connect dials and completes connection_init → connection_ack.
func (e *env) connect(protocol string) *websocket.Conn {
	e.t.Helper()
	c := e.dial(protocol)
	send(e.t, c, msg{Type: "connection_init"})
	expect(e.t, c, "connection_ack", "")
	return c
}

// subscribe starts `subscription { name }` and waits until its resolver runs.
func (e *env) subscribe(c *websocket.Conn, protocol, id string) {
	e.t.Helper()
	typ := "subscribe"
	if protocol == legacyWS {
		typ = "start"
	}
	send(e.t, c, msg{Type: typ, ID: id, Payload: json.RawMessage(`{"query":"subscription { name }"}`)})
	e.await(e.started, "subscription "+id+" to start")
}

type msg struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func send(t *testing.T, c *websocket.Conn, m msg) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sendRaw(t, c, string(b))
}

func sendRaw(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(wait))
	if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

func read(t *testing.T, c *websocket.Conn) msg {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m msg
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return m
}

// expect reads the next message, skipping keep-alives, and checks its type
// and id.
func expect(t *testing.T, c *websocket.Conn, typ, id string) msg {
	t.Helper()
	for {
		m := read(t, c)
		if m.Type == "ka" || m.Type == "ping" {
			continue
		}
		if m.Type != typ || m.ID != id {
			t.Fatalf("got %s id=%q payload=%s, want %s id=%q", m.Type, m.ID, m.Payload, typ, id)
		}
		return m
	}
}

// expectClose reads until the server's close frame and checks its code and,
// if given, its reason.
func expectClose(t *testing.T, c *websocket.Conn, code int, reason string) {
	t.Helper()
	for {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		_, data, err := c.ReadMessage()
		if err == nil {
			t.Logf("message before close: %s", data)
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("want close %d, got %v", code, err)
		}
		if ce.Code != code || (reason != "" && ce.Text != reason) {
			t.Fatalf("closed with %d %q, want %d %q", ce.Code, ce.Text, code, reason)
		}
		return
	}
}
