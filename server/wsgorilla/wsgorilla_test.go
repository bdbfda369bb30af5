package wsgorilla_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"

	"github.com/korrigo/korrigo/server/wsgorilla"
)

func TestTransportWSHappyPath(t *testing.T) {
	var mu sync.Mutex
	var readErrs []error
	e := newEnv(t, wsgorilla.Options{}, func(ws *transport.Websocket) {
		ws.ErrorFunc = func(_ context.Context, err error) {
			mu.Lock()
			defer mu.Unlock()
			readErrs = append(readErrs, err)
		}
	})
	c := e.dial(transportWS)
	if got := c.Subprotocol(); got != transportWS {
		t.Fatalf("negotiated %q", got)
	}
	send(t, c, msg{Type: "connection_init", Payload: json.RawMessage(`{"authorization":"Bearer x"}`)})
	expect(t, c, "connection_ack", "")

	e.subscribe(c, transportWS, "1")
	e.gql.SendNextSubscriptionMessage()
	if m := expect(t, c, "next", "1"); string(m.Payload) != `{"data":{"name":"test"}}` {
		t.Fatalf("next payload %s", m.Payload)
	}
	e.gql.SendCompleteSubscriptionMessage()
	expect(t, c, "complete", "1")

	send(t, c, msg{Type: "ping"})
	expect(t, c, "pong", "")

	if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye")); err != nil {
		t.Fatal(err)
	}
	expectClose(t, c, 1000, "")
	e.awaitClosed()
	// A normal close reaches gqlgen as transport.ErrWebsocketClosed, which
	// it does not report as an error.
	mu.Lock()
	defer mu.Unlock()
	if len(readErrs) != 0 {
		t.Fatalf("ErrorFunc got %v", readErrs)
	}
}

func TestErrorFuncSeesProtocolError(t *testing.T) {
	errs := make(chan error, 8)
	e := newEnv(t, wsgorilla.Options{}, func(ws *transport.Websocket) {
		ws.ErrorFunc = func(_ context.Context, err error) { errs <- err }
	})
	c := e.connect(transportWS)
	sendRaw(t, c, "not json")
	expectClose(t, c, 4400, "")
	select {
	case err := <-errs:
		var pe *wsgorilla.ProtocolError
		if !errors.As(err, &pe) || pe.Code != 4400 {
			t.Fatalf("ErrorFunc got %v", err)
		}
	case <-time.After(wait):
		t.Fatal("ErrorFunc not called")
	}
}

func TestLegacyHappyPath(t *testing.T) {
	e := newEnv(t, wsgorilla.Options{}, nil)
	c := e.dial(legacyWS)
	if got := c.Subprotocol(); got != legacyWS {
		t.Fatalf("negotiated %q", got)
	}
	send(t, c, msg{Type: "connection_init"})
	expect(t, c, "connection_ack", "")

	e.subscribe(c, legacyWS, "1")
	e.gql.SendNextSubscriptionMessage()
	expect(t, c, "data", "1")
	e.gql.SendCompleteSubscriptionMessage()
	expect(t, c, "complete", "1")

	send(t, c, msg{Type: "connection_terminate"})
	expectClose(t, c, 1000, "terminated")
}

func TestPrefersTransportWS(t *testing.T) {
	e := newEnv(t, wsgorilla.Options{}, nil)
	if got := e.dial(legacyWS, transportWS).Subprotocol(); got != transportWS {
		t.Fatalf("negotiated %q, want %s", got, transportWS)
	}
}

func TestCloseCodes(t *testing.T) {
	subscribe := `{"type":"subscribe","id":"1","payload":{"query":"subscription { name }"}}`
	tests := []struct {
		name   string
		run    func(t *testing.T, e *env, c *websocket.Conn)
		code   int
		reason string
	}{
		{"subscribe before init", func(t *testing.T, e *env, c *websocket.Conn) {
			sendRaw(t, c, subscribe)
		}, 4401, "Unauthorized"},
		{"second init", func(t *testing.T, e *env, c *websocket.Conn) {
			send(t, c, msg{Type: "connection_init"})
			expect(t, c, "connection_ack", "")
			send(t, c, msg{Type: "connection_init"})
		}, 4429, "Too many initialisation requests"},
		{"not JSON before init", func(t *testing.T, e *env, c *websocket.Conn) {
			sendRaw(t, c, "hello")
		}, 4400, "Invalid message received"},
		{"not JSON after init", func(t *testing.T, e *env, c *websocket.Conn) {
			send(t, c, msg{Type: "connection_init"})
			expect(t, c, "connection_ack", "")
			sendRaw(t, c, "{")
		}, 4400, "Invalid message received"},
		{"unknown message type", func(t *testing.T, e *env, c *websocket.Conn) {
			send(t, c, msg{Type: "connection_init"})
			expect(t, c, "connection_ack", "")
			send(t, c, msg{Type: "next", ID: "1"})
		}, 4400, "Invalid message received"},
		{"subscribe without query", func(t *testing.T, e *env, c *websocket.Conn) {
			send(t, c, msg{Type: "connection_init"})
			expect(t, c, "connection_ack", "")
			send(t, c, msg{Type: "subscribe", ID: "1", Payload: json.RawMessage(`{}`)})
		}, 4400, "Invalid message received"},
		{"init payload not an object", func(t *testing.T, e *env, c *websocket.Conn) {
			send(t, c, msg{Type: "connection_init", Payload: json.RawMessage(`"token"`)})
		}, 4400, "Invalid message received"},
		{"duplicate subscription id", func(t *testing.T, e *env, c *websocket.Conn) {
			send(t, c, msg{Type: "connection_init"})
			expect(t, c, "connection_ack", "")
			e.subscribe(c, transportWS, "1")
			sendRaw(t, c, subscribe)
		}, 4409, "Subscriber for 1 already exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, wsgorilla.Options{}, nil)
			c := e.dial(transportWS)
			tc.run(t, e, c)
			expectClose(t, c, tc.code, tc.reason)
			e.awaitClosed()
		})
	}
}

func TestDuplicateIDClosesRunningSubscription(t *testing.T) {
	e := newEnv(t, wsgorilla.Options{}, nil)
	c := e.connect(transportWS)
	e.subscribe(c, transportWS, "1")
	send(t, c, msg{Type: "subscribe", ID: "1", Payload: json.RawMessage(`{"query":"subscription { name }"}`)})
	expectClose(t, c, 4409, "")
	e.await(e.ended, "the first subscription to end")
}

func TestLegacyDuplicateID(t *testing.T) {
	e := newEnv(t, wsgorilla.Options{}, nil)
	c := e.connect(legacyWS)
	e.subscribe(c, legacyWS, "1")
	send(t, c, msg{Type: "start", ID: "1", Payload: json.RawMessage(`{"query":"subscription { name }"}`)})
	expectClose(t, c, 4409, "Subscriber for 1 already exists")
}

func TestIDReusableAfterServerComplete(t *testing.T) {
	e := newEnv(t, wsgorilla.Options{}, nil)
	c := e.connect(transportWS)
	e.subscribe(c, transportWS, "1")
	e.gql.SendCompleteSubscriptionMessage()
	expect(t, c, "complete", "1")

	e.subscribe(c, transportWS, "1")
	e.gql.SendNextSubscriptionMessage()
	expect(t, c, "next", "1")
}

// gqlgen answers a client complete with its own complete; if that reached the
// client after the id was reused, it would end the new operation.
func TestIDReusableAfterClientComplete(t *testing.T) {
	e := newEnv(t, wsgorilla.Options{}, nil)
	c := e.connect(transportWS)
	e.subscribe(c, transportWS, "1")
	send(t, c, msg{Type: "complete", ID: "1"})
	e.subscribe(c, transportWS, "1")
	e.await(e.ended, "the first subscription to end")

	e.gql.SendNextSubscriptionMessage()
	expect(t, c, "next", "1")
	e.gql.SendCompleteSubscriptionMessage()
	expect(t, c, "complete", "1")
}

func TestInvalidQueryGetsErrorOnly(t *testing.T) {
	e := newEnv(t, wsgorilla.Options{}, nil)
	c := e.connect(transportWS)
	send(t, c, msg{Type: "subscribe", ID: "1", Payload: json.RawMessage(`{"query":"!"}`)})
	expect(t, c, "error", "1")
	// error is terminal in graphql-transport-ws: gqlgen's trailing complete
	// is dropped, so the next message is the pong.
	send(t, c, msg{Type: "ping"})
	expect(t, c, "pong", "")
}

func TestPingBeforeInit(t *testing.T) {
	e := newEnv(t, wsgorilla.Options{}, nil)
	c := e.dial(transportWS)
	send(t, c, msg{Type: "ping"})
	expect(t, c, "pong", "")
	send(t, c, msg{Type: "pong"})
	send(t, c, msg{Type: "complete", ID: "1"})
	send(t, c, msg{Type: "connection_init"})
	expect(t, c, "connection_ack", "")
}

func TestInitTimeout(t *testing.T) {
	for _, tc := range []struct {
		protocol string
		code     int
		reason   string
	}{
		{transportWS, 4408, "Connection initialisation timeout"},
		{legacyWS, 1002, "connection initialisation timeout"},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			var hookCode int
			hooked := make(chan struct{})
			opts := wsgorilla.Options{
				InitTimeout: 50 * time.Millisecond,
				OnProtocolClose: func(_ context.Context, code int, _ string) {
					hookCode = code
					close(hooked)
				},
			}
			// gqlgen's own timer is longer, as the Options doc asks.
			e := newEnv(t, opts, func(ws *transport.Websocket) { ws.InitTimeout = time.Minute })
			c := e.dial(tc.protocol)
			expectClose(t, c, tc.code, tc.reason)
			e.await(hooked, "OnProtocolClose")
			if hookCode != tc.code {
				t.Fatalf("hook got %d", hookCode)
			}
			e.awaitClosed()
		})
	}
}

func TestInitInTimeKeepsConnection(t *testing.T) {
	e := newEnv(t, wsgorilla.Options{InitTimeout: 50 * time.Millisecond}, func(ws *transport.Websocket) {
		// The pings only serve as a clock here; a slow pong must not matter.
		ws.PingPongInterval = 20 * time.Millisecond
		ws.MissingPongOk = true
	})
	c := e.connect(transportWS)
	// Five pings are at least 100 ms, twice the init timeout: the socket is
	// still open because connection_init stopped the timer.
	for range 5 {
		expectType(t, c, "ping")
	}
}

func TestSubprotocolNotAcceptable(t *testing.T) {
	for name, protocols := range map[string][]string{
		"unknown": {"graphql-foo"},
		"none":    nil,
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, wsgorilla.Options{}, nil)
			c := e.dial(protocols...)
			expectClose(t, c, 4406, "Subprotocol not acceptable")
		})
	}
}

func TestInitFuncRejectsWith4403(t *testing.T) {
	e := newEnv(t, wsgorilla.Options{}, func(ws *transport.Websocket) {
		ws.InitFunc = func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			if p.Authorization() != "Bearer good" {
				ctx = transport.WithWebsocketCloseCode(ctx, wsgorilla.CloseForbidden)
				return transport.AppendCloseReason(ctx, "Forbidden"), nil, errors.New("bad token")
			}
			return ctx, nil, nil
		}
	})

	c := e.dial(transportWS)
	send(t, c, msg{Type: "connection_init", Payload: json.RawMessage(`{"authorization":"Bearer bad"}`)})
	expectClose(t, c, 4403, "Forbidden")
	if code := e.awaitClosed(); code != 4403 {
		t.Fatalf("CloseFunc got %d", code)
	}

	ok := e.dial(transportWS)
	send(t, ok, msg{Type: "connection_init", Payload: json.RawMessage(`{"authorization":"Bearer good"}`)})
	expect(t, ok, "connection_ack", "")
}

func TestOrigin(t *testing.T) {
	tests := []struct {
		name    string
		check   func(*http.Request) bool
		origin  string // "self" means the test server's own origin
		allowed bool
	}{
		{"nil check, cross origin", nil, "https://evil.example", false},
		{"nil check, same origin", nil, "self", true},
		{"nil check, no origin header", nil, "", true},
		{"allow-list, listed", wsgorilla.AllowOrigins("https://app.example"), "https://APP.example", true},
		{"allow-list, not listed", wsgorilla.AllowOrigins("https://app.example"), "https://evil.example", false},
		{"allow-list, other scheme", wsgorilla.AllowOrigins("https://app.example"), "http://app.example", false},
		{"allow-list, same origin", wsgorilla.AllowOrigins("https://app.example"), "self", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, wsgorilla.Options{CheckOrigin: tc.check}, nil)
			h := http.Header{}
			switch tc.origin {
			case "":
			case "self":
				h.Set("Origin", e.srv.URL)
			default:
				h.Set("Origin", tc.origin)
			}
			c, resp, err := e.dialHeader(h, transportWS)
			if tc.allowed {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				send(t, c, msg{Type: "connection_init"})
				expect(t, c, "connection_ack", "")
				return
			}
			if !errors.Is(err, websocket.ErrBadHandshake) {
				t.Fatalf("want refused upgrade, got %v", err)
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
}

func TestReadLimit(t *testing.T) {
	big := `{"type":"subscribe","id":"1","payload":{"query":"subscription { name }","variables":{"pad":"` +
		strings.Repeat("x", 64<<10) + `"}}}`
	t.Run("adapter limit", func(t *testing.T) {
		e := newEnv(t, wsgorilla.Options{ReadLimit: 1024}, nil)
		c := e.connect(transportWS)
		sendRaw(t, c, big)
		expectClose(t, c, websocket.CloseMessageTooBig, "")
	})
	t.Run("gqlgen limit is stricter", func(t *testing.T) {
		limit := int64(1024)
		e := newEnv(t, wsgorilla.Options{}, func(ws *transport.Websocket) { ws.PayloadReadLimit = &limit })
		c := e.connect(transportWS)
		sendRaw(t, c, big)
		expectClose(t, c, websocket.CloseMessageTooBig, "")
	})
	t.Run("within limit", func(t *testing.T) {
		e := newEnv(t, wsgorilla.Options{ReadLimit: 1 << 20}, nil)
		c := e.connect(transportWS)
		sendRaw(t, c, big)
		e.await(e.started, "subscription")
	})
}

func TestServerPings(t *testing.T) {
	t.Run(transportWS, func(t *testing.T) {
		e := newEnv(t, wsgorilla.Options{}, func(ws *transport.Websocket) {
			ws.PingPongInterval = 20 * time.Millisecond
		})
		c := e.connect(transportWS)
		expectType(t, c, "ping")
	})
	t.Run(legacyWS, func(t *testing.T) {
		e := newEnv(t, wsgorilla.Options{}, func(ws *transport.Websocket) {
			ws.KeepAlivePingInterval = 20 * time.Millisecond
		})
		c := e.connect(legacyWS)
		expectType(t, c, "ka") // sent right after the ack
		expectType(t, c, "ka") // sent by the ticker
	})
}

func TestMissingPongEndsConnection(t *testing.T) {
	e := newEnv(t, wsgorilla.Options{}, func(ws *transport.Websocket) {
		ws.PingPongInterval = 20 * time.Millisecond
	})
	e.connect(transportWS) // never answers the pings
	e.awaitClosed()
}

// The adapter's own keep-alive (Options.PingInterval) replaces gqlgen's
// goroutines with a timer and keeps gqlgen's behaviour.
func TestAdapterPings(t *testing.T) {
	const every = 50 * time.Millisecond // roomy: -race on a shared 2-core machine stalls goroutines
	t.Run(transportWS, func(t *testing.T) {
		e := newEnv(t, wsgorilla.Options{PingInterval: 5 * every}, nil)
		c := e.connect(transportWS)
		expectType(t, c, "ping")
		send(t, c, msg{Type: "pong"}) // the deadline is two intervals after the ack
		expectType(t, c, "ping")
	})
	t.Run(legacyWS, func(t *testing.T) {
		e := newEnv(t, wsgorilla.Options{PingInterval: every}, nil)
		c := e.connect(legacyWS)
		expectType(t, c, "ka") // gqlgen's, right after the ack
		expectType(t, c, "ka") // the adapter's timer
		expectType(t, c, "ka")
	})
	t.Run("no pings before the ack", func(t *testing.T) {
		e := newEnv(t, wsgorilla.Options{PingInterval: every, InitTimeout: 10 * every}, nil)
		c := e.dial(transportWS)
		expectClose(t, c, 4408, "Connection initialisation timeout")
	})
	t.Run("missing pong ends the connection", func(t *testing.T) {
		e := newEnv(t, wsgorilla.Options{PingInterval: every}, nil)
		e.connect(transportWS) // never answers
		e.awaitClosed()
	})
	t.Run("pongs keep the connection", func(t *testing.T) {
		// A slower clock: the client must answer within two intervals on a
		// busy machine.
		e := newEnv(t, wsgorilla.Options{PingInterval: 5 * every}, nil)
		c := e.connect(transportWS)
		// Six pings answered span three times the two-interval deadline.
		for range 6 {
			expectType(t, c, "ping")
			send(t, c, msg{Type: "pong"})
		}
		e.subscribe(c, transportWS, "1")
	})
}

func TestShutdownEndsSubscriptions(t *testing.T) {
	e := newEnv(t, wsgorilla.Options{}, nil)
	running := e.connect(transportWS)
	e.subscribe(running, transportWS, "1")
	waiting := e.dial(transportWS) // no connection_init yet

	e.shutdown()
	e.await(e.ended, "the subscription to end")
	expectClose(t, running, 1000, "terminated")
	expectClose(t, waiting, 1001, "server shutting down")
}

func expectType(t *testing.T, c *websocket.Conn, typ string) {
	t.Helper()
	if m := read(t, c); m.Type != typ {
		t.Fatalf("got %s, want %s", m.Type, typ)
	}
}
