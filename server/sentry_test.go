package server_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/getsentry/sentry-go"
	"go.uber.org/zap/zaptest"

	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/server"
	"github.com/korrigo/korrigo/server/servertest"
)

// captureTransport is a sentry.Transport that keeps the events.
type captureTransport struct {
	mu     sync.Mutex
	events []*sentry.Event
}

func (c *captureTransport) Configure(sentry.ClientOptions)        {}
func (c *captureTransport) Flush(time.Duration) bool              { return true }
func (c *captureTransport) FlushWithContext(context.Context) bool { return true }
func (c *captureTransport) Close()                                {}
func (c *captureTransport) SendEvent(e *sentry.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

func (c *captureTransport) take() []*sentry.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.events
	c.events = nil
	return out
}

func TestSentryReportsInternalErrorsOnly(t *testing.T) {
	d := dbtest.Open(t, dialect.SQLite)
	cfg, err := server.LoadConfig(func(k string) string {
		switch k {
		case "KORRIGO_DATA_DIR":
			return t.TempDir()
		case "KORRIGO_SENTRY_DSN":
			return "https://public@sentry.example/1"
		}
		return servertest.TestRateLimits[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	sent := &captureTransport{}
	cfg.SentryTransport = sent
	app, err := server.NewAppWithDB(cfg, zaptest.NewLogger(t), d)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler)
	t.Cleanup(func() { srv.Close(); _ = app.Close() })
	e := &servertest.Env{T: t, DB: d, App: app, Server: srv, Statements: &servertest.Counter{}}

	token := e.Admin()
	as := e.As(token)
	as.Header.Set("Cookie", "korrigo_session=cookie-secret-value")
	as.Header.Set("X-Request-Id", "req-sentry-test-0001")
	var me struct{ Me struct{ ID string } }
	as.MustDo(`{ me { id } }`, nil, &me)

	// A typed error is the caller's business: nothing is reported.
	r := as.Do(`mutation($c: ID!) { acquireCopyLock(copyId: $c) { token } }`,
		map[string]any{"c": "cpy_0000000000000000000000000"})
	if code := e.ErrorCode(r); code != "NOT_FOUND" {
		t.Fatalf("want NOT_FOUND, got %s", code)
	}
	if got := sent.take(); len(got) != 0 {
		t.Fatalf("a NOT_FOUND was reported: %+v", got)
	}

	// The exams table goes away under the server: INTERNAL_SERVER_ERROR, one event.
	if _, err := d.SQL.Exec(`ALTER TABLE exams RENAME TO exams_gone`); err != nil {
		t.Fatal(err)
	}
	r = as.Do(`{ exams(first: 5) { edges { node { id name } } } }`, nil)
	if code := e.ErrorCode(r); code != "INTERNAL_SERVER_ERROR" {
		t.Fatalf("want INTERNAL_SERVER_ERROR, got %s", code)
	}
	events := sent.take()
	if len(events) != 1 {
		t.Fatalf("want one event, got %d", len(events))
	}
	ev := events[0]
	if ev.Tags["request_id"] != "req-sentry-test-0001" || ev.User.ID != me.Me.ID || ev.Release == "" ||
		ev.Tags["operation"] != "exams" || len(ev.Exception) == 0 {
		t.Fatalf("event lacks request id, user id, operation, release or exception: tags %v user %+v release %q",
			ev.Tags, ev.User, ev.Release)
	}
	raw, _ := json.Marshal(ev)
	for _, secret := range []string{token, "cookie-secret-value", servertest.AdminEmail, "Authorization", "Cookie",
		"korrigo_session", "Administrator"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("event carries %q: %s", secret, raw)
		}
	}
	if ev.Request != nil || ev.User.Email != "" || ev.User.Name != "" || ev.User.IPAddress != "" {
		t.Errorf("event carries request or personal data: %+v %+v", ev.Request, ev.User)
	}
}
