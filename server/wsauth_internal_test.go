package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/korrigo/korrigo/auth"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/pubsub"
	"github.com/korrigo/korrigo/server/httpctx"
)

// testWait bounds every wait of these tests (never an assertion on time).
const testWait = 20 * time.Second

type socketLabel struct{}

type testSocket struct {
	label string
	end   context.CancelFunc
}

// authHarness is a socketAuth with an hour between periodic checks, fed by an
// in-memory broker, over sockets that are contexts: closing one records its
// label and ends its context, as the real socket would.
type authHarness struct {
	t      *testing.T
	d      *db.DB
	authn  *auth.Service
	sa     *socketAuth
	broker pubsub.Broker
	users  int

	mu     sync.Mutex
	closed map[string]bool
	order  chan string
	ends   []context.CancelFunc
}

func newAuthHarness(t *testing.T, d *db.DB) *authHarness {
	h := &authHarness{t: t, d: d, closed: map[string]bool{}, order: make(chan string, 64), broker: pubsub.NewMemory()}
	// No CredentialsChanged: the tests publish the hints themselves.
	h.authn = auth.NewService(d.Client, zaptest.NewLogger(t), auth.Options{Hash: auth.HashParams{Memory: 1024, Time: 1, Threads: 1}})
	h.sa = newSocketAuth(h.authn, zaptest.NewLogger(t), time.Hour, time.Second)
	h.sa.close = func(ctx context.Context) bool {
		s := ctx.Value(socketLabel{}).(*testSocket)
		s.end()
		h.mu.Lock()
		first := !h.closed[s.label]
		h.closed[s.label] = true
		h.mu.Unlock()
		if first {
			h.order <- s.label
		}
		return first
	}
	if err := h.sa.listen(h.broker); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.stop)
	return h
}

// stop closes every socket and waits for the loop to end with the last.
func (h *authHarness) stop() {
	for _, end := range h.ends {
		end()
	}
	deadline := time.Now().Add(testWait)
	for {
		h.sa.mu.Lock()
		socks, running := len(h.sa.socks), h.sa.running
		h.sa.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			h.t.Errorf("the re-check loop still runs with %d sockets", socks)
			break
		}
		if socks == 0 {
			h.sa.wakeUp()
		}
		time.Sleep(time.Millisecond)
	}
	_ = h.broker.Close()
}

// user creates an account and returns its id and a function opening sockets
// on new sessions of it.
func (h *authHarness) user() (string, func(label string, revoked bool)) {
	h.t.Helper()
	h.users++
	email := fmt.Sprintf("user%d@lycee-exemple.fr", h.users)
	const password = "violet-tramway-harbour-42"
	u, _, err := h.authn.CreateAdmin(context.Background(), email, "", password)
	if err != nil {
		h.t.Fatal(err)
	}
	return u.ID, func(label string, revoked bool) {
		h.t.Helper()
		token, _, _, err := h.authn.Login(context.Background(), email, password, auth.ClientMeta{})
		if err != nil {
			h.t.Fatal(err)
		}
		v, err := h.authn.Authenticate(context.Background(), token)
		if err != nil {
			h.t.Fatal(err)
		}
		if revoked { // behind socketAuth's back: only a check finds it
			sys := rules.System(context.Background())
			if err := h.d.Client.Session.UpdateOneID(v.SessionID).SetRevokedAt(time.Now()).Exec(sys); err != nil {
				h.t.Fatal(err)
			}
		}
		s := &testSocket{label: label}
		ctx, end := context.WithCancel(context.WithValue(context.Background(), socketLabel{}, s))
		s.end = end
		h.ends = append(h.ends, end)
		h.sa.watch(ctx, v)
	}
}

func (h *authHarness) publish(userID string) {
	h.t.Helper()
	if err := h.broker.Publish(context.Background(), credentialsTopic, fmt.Appendf(nil, `{"userId":%q}`, userID)); err != nil {
		h.t.Fatal(err)
	}
}

// nextClosed waits for the next socket to be closed and returns its label.
func (h *authHarness) nextClosed() string {
	h.t.Helper()
	select {
	case label := <-h.order:
		return label
	case <-time.After(testWait):
		h.t.Fatalf("no socket closed within %s", testWait)
	}
	return ""
}

func (h *authHarness) wantClosed(want ...string) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.closed) != len(want) {
		h.t.Fatalf("closed %v, want %v", h.closed, want)
	}
	for _, w := range want {
		if !h.closed[w] {
			h.t.Fatalf("closed %v, want %v", h.closed, want)
		}
	}
}

// A hint checks the sockets of its user only; a Resync (hints may have been
// lost) checks every socket; valid credentials stay open either way. Rounds
// run one at a time, so once a sentinel's socket closes, the round before it
// has ended: that is how the test knows what a round left open.
func TestSocketAuthHintsAndResync(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newAuthHarness(t, d)
		marie, marieOpens := h.user()
		_, paulOpens := h.user()
		sentinel1, sentinel1Opens := h.user()
		_, sentinel2Opens := h.user()
		sentinel3, sentinel3Opens := h.user()
		marieOpens("marie-revoked", true)
		marieOpens("marie-valid", false)
		paulOpens("paul-revoked", true)
		paulOpens("paul-valid", false)
		sentinel1Opens("sentinel-1", true)
		sentinel2Opens("sentinel-2", true)

		h.publish(marie)
		if got := h.nextClosed(); got != "marie-revoked" {
			t.Fatalf("a hint for Marie closed %s", got)
		}
		h.publish(sentinel1)
		if got := h.nextClosed(); got != "sentinel-1" {
			t.Fatalf("a hint for the sentinel closed %s", got)
		}
		h.wantClosed("marie-revoked", "sentinel-1") // Paul's revoked session waits for a check

		h.sa.hint(pubsub.Message{Topic: credentialsTopic, Resync: true})
		if got := h.nextClosed(); got != "paul-revoked" && got != "sentinel-2" {
			t.Fatalf("the Resync closed %s", got)
		}
		if got := h.nextClosed(); got != "paul-revoked" && got != "sentinel-2" {
			t.Fatalf("the Resync closed %s", got)
		}
		// Watched after the Resync's round took its sockets: closed by a
		// later round.
		sentinel3Opens("sentinel-3", true)
		h.publish(sentinel3)
		if got := h.nextClosed(); got != "sentinel-3" {
			t.Fatalf("a hint for the sentinel closed %s", got)
		}
		h.wantClosed("marie-revoked", "sentinel-1", "paul-revoked", "sentinel-2", "sentinel-3")
	})
}

// A socket authenticated before a revocation but watched after its hint was
// handled (the session cookie is checked at the upgrade, the socket watched at
// connection_init) is checked as soon as it is watched.
func TestSocketAuthHintBeforeWatch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newAuthHarness(t, d)
		marie, marieOpens := h.user()
		_, paulOpens := h.user()
		sentinel, sentinelOpens := h.user()
		paulOpens("paul-revoked", true) // no hint for Paul: stays open
		sentinelOpens("sentinel", true)
		h.publish(marie) // handled with none of Marie's sockets watched…
		h.publish(sentinel)
		if got := h.nextClosed(); got != "sentinel" {
			t.Fatalf("a hint for the sentinel closed %s", got)
		}
		marieOpens("marie-revoked", true) // …and only then is this one watched
		if got := h.nextClosed(); got != "marie-revoked" {
			t.Fatalf("closed %s", got)
		}
		h.wantClosed("sentinel", "marie-revoked")
	})
}

// A hint that cannot be published is logged with the user and the request,
// and the revocation stands: the periodic re-check closes the sockets.
func TestCredentialsHintPublishFailureIsLogged(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	broker := pubsub.NewMemory()
	_ = broker.Close()
	ctx := httpctx.WithRequestID(context.Background(), "req-42")
	publishCredentialsChanged(broker, zap.New(core))(ctx, "usr_marie")
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("want one warning, got %+v", entries)
	}
	fields := entries[0].ContextMap()
	if fields["user_id"] != "usr_marie" || fields["request_id"] != "req-42" || fields["error"] == nil {
		t.Fatalf("warning fields %v: want the user, the request id and the error", fields)
	}
}
