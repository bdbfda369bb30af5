package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	"go.uber.org/zap/zaptest"
)

type eventSink struct {
	mu     sync.Mutex
	events []*sentry.Event
}

func (s *eventSink) Configure(sentry.ClientOptions)        {}
func (s *eventSink) Flush(time.Duration) bool              { return true }
func (s *eventSink) FlushWithContext(context.Context) bool { return true }
func (s *eventSink) Close()                                {}
func (s *eventSink) SendEvent(e *sentry.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

// A panic outside GraphQL is answered 500 and reported once, with the
// request id; nothing from the request travels.
func TestWithRecoverReportsPanics(t *testing.T) {
	sink := &eventSink{}
	rep, err := newReporter(Config{SentryDSN: "https://public@sentry.example/1", Env: "production", SentryTransport: sink},
		zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	h := withRequestID(withRecover(zaptest.NewLogger(t), rep, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom for jeanne.martin@school.example")
	})))
	req := httptest.NewRequest(http.MethodGet, "/files/copies/x/final.pdf?sig=secret-signature", nil)
	req.Header.Set("Cookie", "korrigo_session=cookie-secret")
	req.Header.Set("X-Request-Id", "req-panic-000001")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "boom") {
		t.Fatalf("panic answered %d %s", rec.Code, rec.Body)
	}
	if len(sink.events) != 1 {
		t.Fatalf("want one event, got %d", len(sink.events))
	}
	raw, _ := json.Marshal(sink.events[0])
	if sink.events[0].Tags["request_id"] != "req-panic-000001" {
		t.Errorf("no request id: %s", raw)
	}
	for _, s := range []string{"cookie-secret", "secret-signature", "jeanne.martin"} {
		if strings.Contains(string(raw), s) {
			t.Errorf("event carries %q: %s", s, raw)
		}
	}
}

// scrubEvent strips what an integration could add: the request, user fields
// other than the id, breadcrumbs, emails and bearer tokens in messages.
func TestScrubEvent(t *testing.T) {
	ev := &sentry.Event{
		Message:     "login failed for paul@school.example with Authorization: Bearer abc.def",
		Request:     &sentry.Request{Cookies: "korrigo_session=x", Headers: map[string]string{"Authorization": "Bearer t"}, Data: `{"password":"p"}`},
		User:        sentry.User{ID: "usr_1", Email: "paul@school.example", Name: "Paul Durand", IPAddress: "10.0.0.1"},
		Breadcrumbs: []*sentry.Breadcrumb{{Message: "Paul Durand"}},
		Exception:   []sentry.Exception{{Value: "import paul@school.example"}},
	}
	out := scrubEvent(ev, nil)
	raw, _ := json.Marshal(out)
	for _, s := range []string{"paul@", "Paul Durand", "korrigo_session", "abc.def", "password", "10.0.0.1"} {
		if strings.Contains(string(raw), s) {
			t.Errorf("scrubbed event carries %q: %s", s, raw)
		}
	}
	if out.User.ID != "usr_1" {
		t.Errorf("user id lost: %+v", out.User)
	}
}
