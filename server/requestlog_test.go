package server_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server"
	"github.com/korrigo/korrigo/server/servertest"
)

func observedApp(t *testing.T, slow time.Duration) (*servertest.Env, *observer.ObservedLogs) {
	t.Helper()
	d := dbtest.Open(t, dialect.SQLite)
	cfg, err := server.LoadConfig(func(k string) string {
		if k == "KORRIGO_DATA_DIR" {
			return t.TempDir()
		}
		return servertest.TestRateLimits[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.SlowRequest = slow
	core, logs := observer.New(zap.InfoLevel)
	app, err := server.NewAppWithDB(cfg, zap.New(core), d)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); _ = app.Close() })
	return &servertest.Env{T: t, DB: d, App: app, Server: srv, Statements: &servertest.Counter{}}, logs
}

// The access log names the caller and the operation; over the threshold the
// line is a "slow request" warning. Over WebSocket, where one HTTP request
// carries many operations, each slow operation gets its own warning.
func TestSlowRequestLog(t *testing.T) {
	e, logs := observedApp(t, time.Nanosecond) // every request is "slow"
	token := e.Admin()
	var me struct{ Me struct{ ID string } }
	as := e.As(token)
	as.Header.Set("X-Request-Id", "req-slow-log-0001")
	as.MustDo(`query WhoAmI { me { id } }`, nil, &me)

	found := false
	for _, l := range logs.FilterMessage("slow request").All() {
		f := l.ContextMap()
		if f["request_id"] == "req-slow-log-0001" {
			found = true
			if l.Level != zap.WarnLevel || f["operation"] != "WhoAmI" || f["fields"] != "me" || f["user_id"] != me.Me.ID ||
				f["path"] != "/graphql" {
				t.Errorf("slow request line lacks operation, fields, user id or path: %v %v", l.Level, f)
			}
		}
	}
	if !found {
		t.Fatalf("no slow request line for the request: %v", logs.All())
	}

	c := mustDial(t, e, dialOpts{})
	c.init(bearer(token))
	id := c.subscribe(`query OverSocket { me { id } }`, nil)
	c.data(id, &me)
	deadline := time.Now().Add(wsWait)
	for logs.FilterMessage("slow operation").FilterField(zap.String("operation", "OverSocket")).Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no slow operation line for the WebSocket operation: %v", logs.FilterMessage("slow operation").All())
		}
		time.Sleep(10 * time.Millisecond)
	}
	l := logs.FilterMessage("slow operation").FilterField(zap.String("operation", "OverSocket")).All()[0]
	if f := l.ContextMap(); f["user_id"] != me.Me.ID || f["fields"] != "me" || f["request_id"] == "" {
		t.Errorf("slow operation line: %v", f)
	}
}

// Under the threshold a request is an Info line, with the same fields.
func TestAccessLogFields(t *testing.T) {
	e, logs := observedApp(t, time.Hour)
	token := e.Admin()
	as := e.As(token)
	as.Header.Set("X-Request-Id", "req-access-log-01")
	var me struct{ Me struct{ ID string } }
	as.MustDo(`query WhoAmI { me { id } }`, nil, &me)
	if n := logs.FilterMessage("slow request").Len(); n != 0 {
		t.Fatalf("%d slow request lines under a 1 h threshold", n)
	}
	lines := logs.FilterMessage("request").FilterField(zap.String("request_id", "req-access-log-01")).All()
	if len(lines) != 1 {
		t.Fatalf("want one access log line, got %v", logs.All())
	}
	if f := lines[0].ContextMap(); f["operation"] != "WhoAmI" || f["user_id"] != me.Me.ID || lines[0].Level != zap.InfoLevel {
		t.Errorf("access log line: %v %v", lines[0].Level, f)
	}
}

// A socket's access line is written at the upgrade (101); its end gets a line
// of its own, with the close code, how long it lived and who it served.
func TestWebsocketCloseLog(t *testing.T) {
	e, logs := observedApp(t, time.Minute)
	teacher, token := e.NewUser(user.RoleTEACHER, "Marie")
	c := mustDial(t, e, dialOpts{header: http.Header{"X-Request-Id": {"req-ws-close-log-01"}}})
	c.init(bearer(token))
	_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	c.closeCode()

	deadline := time.Now().Add(wsWait)
	for {
		for _, l := range logs.FilterMessage("websocket closed").All() {
			f := l.ContextMap()
			if f["request_id"] != "req-ws-close-log-01" {
				continue
			}
			if l.Level != zap.InfoLevel || f["user_id"] != teacher.ID || f["code"] != int64(websocket.CloseNormalClosure) {
				t.Fatalf("close line: level %v, fields %v", l.Level, f)
			}
			if d, ok := f["duration"].(time.Duration); !ok || d <= 0 {
				t.Fatalf("close line without the socket's duration: %v", f)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no close line for the socket; logged: %v", logs.All())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
