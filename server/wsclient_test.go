package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/server"
	"github.com/korrigo/korrigo/server/servertest"
)

// wsWait bounds every wait for a message; generous because the shared test
// machine is slow under -race. Tests never assert on time.
const wsWait = 20 * time.Second

// newInstance starts one `serve`-like instance over d with its own broker
// (Redis when redisURL is set), as a second replica behind a load balancer would.
func newInstance(t *testing.T, d *db.DB, redisURL string, env map[string]string) *servertest.Env {
	t.Helper()
	cfg, err := server.LoadConfig(func(k string) string {
		switch k {
		case "KORRIGO_DATA_DIR":
			return t.TempDir()
		case "KORRIGO_REDIS_URL":
			return redisURL
		}
		if v, ok := env[k]; ok {
			return v
		}
		return servertest.TestRateLimits[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	app, err := server.NewAppWithDB(cfg, zaptest.NewLogger(t), d)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		_ = app.Broker.Close()
	})
	return &servertest.Env{T: t, DB: d, App: app, Server: srv, Statements: &servertest.Counter{}}
}

func testRedisURL(t *testing.T) string {
	u := os.Getenv("KORRIGO_TEST_REDIS_URL")
	if u == "" {
		t.Skip("KORRIGO_TEST_REDIS_URL not set")
	}
	return u
}

// wsMsg is one graphql-transport-ws (or graphql-ws) message.
type wsMsg struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// wsConn is a test client on one socket. A reader goroutine queues messages;
// the close code the server sent ends up in closed.
type wsConn struct {
	t       testing.TB
	ws      *websocket.Conn
	msgs    chan wsMsg
	done    chan struct{}
	code    atomic.Int64 // close code received; -1: connection lost without one
	nextID  atomic.Int64
	writeMu sync.Mutex
}

type dialOpts struct {
	subprotocol string
	header      http.Header
}

func dialWS(t testing.TB, e *servertest.Env, o dialOpts) (*wsConn, *http.Response, error) {
	t.Helper()
	if o.subprotocol == "" {
		o.subprotocol = "graphql-transport-ws"
	}
	d := websocket.Dialer{Subprotocols: []string{o.subprotocol}, HandshakeTimeout: wsWait}
	url := "ws" + strings.TrimPrefix(e.Server.URL, "http") + "/graphql"
	ws, resp, err := d.Dial(url, o.header)
	if err != nil {
		return nil, resp, err
	}
	c := &wsConn{t: t, ws: ws, msgs: make(chan wsMsg, 1024), done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { _ = ws.Close() })
	return c, resp, nil
}

func mustDial(t testing.TB, e *servertest.Env, o dialOpts) *wsConn {
	t.Helper()
	c, _, err := dialWS(t, e, o)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func (c *wsConn) read() {
	defer close(c.done)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.code.Store(int64(ce.Code))
			} else {
				c.code.Store(-1)
			}
			return
		}
		var m wsMsg
		if err := json.Unmarshal(data, &m); err != nil {
			c.t.Errorf("undecodable server message %q", data)
			continue
		}
		if m.Type == "ping" { // graphql-transport-ws server ping
			_ = c.write(wsMsg{Type: "pong"})
			continue
		}
		if m.Type == "ka" { // graphql-ws keep-alive
			continue
		}
		c.msgs <- m
	}
}

func (c *wsConn) write(m wsMsg) error {
	// The reader goroutine answers pings while the test writes.
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(wsWait))
	return c.ws.WriteJSON(m)
}

func (c *wsConn) send(typ, id string, payload any) {
	c.t.Helper()
	var raw json.RawMessage
	if payload != nil {
		raw, _ = json.Marshal(payload)
	}
	if err := c.write(wsMsg{Type: typ, ID: id, Payload: raw}); err != nil {
		c.t.Fatalf("write %s: %v", typ, err)
	}
}

// init sends connection_init and waits for connection_ack.
func (c *wsConn) init(payload any) {
	c.t.Helper()
	c.send("connection_init", "", payload)
	if m := c.next(); m.Type != "connection_ack" {
		c.t.Fatalf("want connection_ack, got %s %s (close %d)", m.Type, m.Payload, c.code.Load())
	}
}

// subscribe starts an operation and returns its id.
func (c *wsConn) subscribe(query string, vars map[string]any) string {
	c.t.Helper()
	id := "op" + string(rune('a'+c.nextID.Add(1)))
	typ := "subscribe"
	if c.ws.Subprotocol() == "graphql-ws" {
		typ = "start"
	}
	c.send(typ, id, map[string]any{"query": query, "variables": vars})
	return id
}

// next returns the next message, failing the test after wsWait.
func (c *wsConn) next() wsMsg {
	c.t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-c.done:
		select {
		case m := <-c.msgs:
			return m
		default:
		}
		c.t.Fatalf("socket closed (code %d) while waiting for a message", c.code.Load())
	case <-time.After(wsWait):
		c.t.Fatalf("no message within %s", wsWait)
	}
	return wsMsg{}
}

// data returns the next result of operation id, decoded into out; it fails on
// anything else.
func (c *wsConn) data(id string, out any) {
	c.t.Helper()
	m := c.next()
	if (m.Type != "next" && m.Type != "data") || m.ID != id {
		c.t.Fatalf("want a result for %s, got %s %s %s", id, m.Type, m.ID, m.Payload)
	}
	var r struct {
		Data   json.RawMessage    `json:"data"`
		Errors []servertest.Error `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		c.t.Fatal(err)
	}
	if len(r.Errors) > 0 {
		c.t.Fatalf("unexpected errors: %+v", r.Errors)
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		c.t.Fatalf("decode %s: %v", r.Data, err)
	}
}

// errorCode returns the code of the error that ended operation id.
func (c *wsConn) errorCode(id string) string {
	c.t.Helper()
	m := c.next()
	if m.ID != id {
		c.t.Fatalf("want a message for %s, got %s %s %s", id, m.Type, m.ID, m.Payload)
	}
	var errs []servertest.Error
	switch m.Type {
	case "error":
		if err := json.Unmarshal(m.Payload, &errs); err != nil {
			var one servertest.Error // graphql-ws sends one error object
			if err := json.Unmarshal(m.Payload, &one); err != nil {
				c.t.Fatal(err)
			}
			errs = []servertest.Error{one}
		}
	case "next", "data":
		var r struct{ Errors []servertest.Error }
		_ = json.Unmarshal(m.Payload, &r)
		errs = r.Errors
	}
	if len(errs) != 1 {
		c.t.Fatalf("want one error for %s, got %s %s", id, m.Type, m.Payload)
	}
	return errs[0].Code()
}

// closeCode waits for the server to close the socket and returns its code.
func (c *wsConn) closeCode() int {
	c.t.Helper()
	select {
	case <-c.done:
		return int(c.code.Load())
	case <-time.After(wsWait):
		c.t.Fatalf("socket still open after %s", wsWait)
	}
	return 0
}

func bearer(token string) map[string]any { return map[string]any{"authorization": "Bearer " + token} }

func withTimeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	t.Cleanup(cancel)
	return ctx
}
