package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server/servertest"
)

// wsResult reads the answer to operation id: its errors' codes and extensions.
func wsResult(t *testing.T, c *wsConn, id string) []servertest.Error {
	t.Helper()
	m := c.next()
	if m.ID != id {
		t.Fatalf("want a message for %s, got %s %s %s", id, m.Type, m.ID, m.Payload)
	}
	var r struct{ Errors []servertest.Error }
	switch m.Type {
	case "next":
		_ = json.Unmarshal(m.Payload, &r)
		if done := c.next(); done.Type != "complete" || done.ID != id {
			t.Fatalf("want complete for %s, got %s %s", id, done.Type, done.ID)
		}
	case "error":
		_ = json.Unmarshal(m.Payload, &r.Errors)
	default:
		t.Fatalf("unexpected %s %s", m.Type, m.Payload)
	}
	return r.Errors
}

func TestRateLimitsWebSocket(t *testing.T) {
	env := newInstance(t, dbtest.Open(t, dialect.SQLite), "", map[string]string{"KORRIGO_RATE_WEBSOCKET": "2-M"})
	_, token := env.NewUser(user.RoleTEACHER, "Wanda")
	c := mustDial(t, env, dialOpts{})
	c.init(bearer(token))

	// Two runs of the same operation per minute on sockets; the third is refused.
	for i := range 2 {
		if errs := wsResult(t, c, c.subscribe(`query Me { me { id } }`, nil)); len(errs) != 0 {
			t.Fatalf("run %d: %+v", i+1, errs)
		}
	}
	errs := wsResult(t, c, c.subscribe(`query Me { me { id } }`, nil))
	if len(errs) != 1 || errs[0].Code() != "RATE_LIMITED" {
		t.Fatalf("3rd run: %+v", errs)
	}
	if retry, _ := errs[0].Extensions["retryAfter"].(float64); retry < 1 || retry > 60 {
		t.Fatalf("retryAfter %v", errs[0].Extensions["retryAfter"])
	}
	// The limit is per operation: another one goes through, on the same socket
	// and on a new one (the socket is not the key, the user is).
	if errs := wsResult(t, c, c.subscribe(`query Other { me { name } }`, nil)); len(errs) != 0 {
		t.Fatalf("another operation: %+v", errs)
	}
	c2 := mustDial(t, env, dialOpts{})
	c2.init(bearer(token))
	if errs := wsResult(t, c2, c2.subscribe(`query Me { me { id } }`, nil)); len(errs) != 1 || errs[0].Code() != "RATE_LIMITED" {
		t.Fatalf("same operation on a new socket: %+v", errs)
	}
	// HTTP requests are not charged to the WebSocket rule.
	var me struct{ Me struct{ ID string } }
	env.As(token).MustDo(`query Me { me { id } }`, nil, &me)
}

// Two replicas sharing Redis share the counters (KORRIGO_REDIS_URL).
func TestRateLimitsSharedInRedis(t *testing.T) {
	redisURL := testRedisURL(t)
	d := dbtest.Open(t, dialect.SQLite)
	env := map[string]string{"KORRIGO_RATE_ANONYMOUS": "3-M", "KORRIGO_TRUSTED_PROXIES": "127.0.0.1,::1"}
	a, b := newInstance(t, d, redisURL, env), newInstance(t, d, redisURL, env)
	// A client address of its own: counters outlive the test in Redis for a minute.
	client := fmt.Sprintf("2001:db8:%x:%x::1", rand.Uint32()&0xffff, rand.Uint32()&0xffff)
	send := func(e *servertest.Env) int {
		body := []byte(`{"query":"{ __typename }"}`)
		req, _ := http.NewRequest(http.MethodPost, e.Server.URL+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i, e := range []*servertest.Env{a, b, a} {
		if s := send(e); s != 200 {
			t.Fatalf("request %d: status %d", i+1, s)
		}
	}
	if s := send(b); s != http.StatusTooManyRequests {
		t.Fatalf("4th request across replicas: status %d, want 429", s)
	}
}

func TestMetricsWebSocket(t *testing.T) {
	env := newInstance(t, dbtest.Open(t, dialect.SQLite), "", nil)
	teacher, token := env.NewUser(user.RoleTEACHER, "Wendy")
	ex := env.NewExam(teacher)
	scrape := func() string {
		resp, err := http.Get(env.Server.URL + "/metrics") // development: no token configured
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return b.String()
	}
	deadline := time.Now().Add(wsWait)
	gauges := func(conns, subs int) {
		t.Helper()
		want := []string{fmt.Sprintf("korrigo_websocket_connections %d\n", conns), fmt.Sprintf("korrigo_graphql_subscriptions %d\n", subs)}
		for {
			m := scrape()
			if strings.Contains(m, want[0]) && strings.Contains(m, want[1]) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("want %q and %q, gauges:\n%s", want[0], want[1], grepLines(m, "korrigo_"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	c := mustDial(t, env, dialOpts{})
	c.init(bearer(token))
	q := `subscription($e: ID!) { copyLockChanged(examId: $e) { __typename } }`
	first := c.subscribe(q, map[string]any{"e": ex.ID})
	c.subscribe(q, map[string]any{"e": ex.ID})
	gauges(1, 2)
	c.send("complete", first, nil) // the client stops one
	gauges(1, 1)
	_ = c.ws.Close() // the other ends with the socket
	gauges(0, 0)

	// Over HTTP, gqlgen answers a subscription with its first event and ends:
	// not an active subscription, before or after.
	var overHTTP struct{ CopyLockChanged struct{ Typename string } }
	env.As(token).MustDo(q, map[string]any{"e": ex.ID}, &overHTTP)
	gauges(0, 0)
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
