package pubsub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"
)

// waitTimeout is generous on purpose: the test machine is shared and slow
// under -race. Nothing below asserts on time, only on eventually.
const waitTimeout = 30 * time.Second

// testRedisURL returns the real server from KORRIGO_TEST_REDIS_URL or skips.
func testRedisURL(t testing.TB) string {
	u := os.Getenv("KORRIGO_TEST_REDIS_URL")
	if u == "" {
		t.Skip("KORRIGO_TEST_REDIS_URL not set")
	}
	return u
}

func randomID(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// withClientName tags the connections of a broker so a test can find (and
// kill) exactly its own connection on a server other tests share.
func withClientName(t testing.TB, rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("client_name", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// impl is one Broker implementation under test. newBroker returns brokers
// that see each other's messages (same server, same prefix), as two
// processes of one deployment would; Memory has no such notion, so the
// multi-process tests use only Redis.
type impl struct {
	name      string
	newBroker func(t testing.TB) Broker
}

func newRedisBroker(t testing.TB, rawURL, prefix string) *Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	r, err := NewRedis(ctx, rawURL, zaptest.NewLogger(t), WithPrefix(prefix))
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// impls returns the implementations to run a test against: memory always,
// Redis on miniredis always, the real Redis server when configured.
func impls(t *testing.T) []impl {
	mr := miniredis.RunT(t)
	miniPrefix := "test:" + randomID(t) + ":"
	list := []impl{
		{"memory", func(t testing.TB) Broker {
			m := NewMemory()
			t.Cleanup(func() { _ = m.Close() })
			return m
		}},
		{"miniredis", func(t testing.TB) Broker {
			return newRedisBroker(t, "redis://"+mr.Addr(), miniPrefix)
		}},
	}
	if u := os.Getenv("KORRIGO_TEST_REDIS_URL"); u != "" {
		prefix := "test:" + randomID(t) + ":"
		list = append(list, impl{"redis", func(t testing.TB) Broker {
			return newRedisBroker(t, u, prefix)
		}})
	}
	return list
}

func forEachImpl(t *testing.T, f func(t *testing.T, im impl)) {
	for _, im := range impls(t) {
		t.Run(im.name, func(t *testing.T) { f(t, im) })
	}
}

func subscribe(t testing.TB, b Broker, ctx context.Context, topic string) *Subscription {
	t.Helper()
	s, err := b.Subscribe(ctx, topic)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", topic, err)
	}
	t.Cleanup(s.Close)
	return s
}

func publish(t testing.TB, b Broker, topic string, payload []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := b.Publish(ctx, topic, payload); err != nil {
		t.Fatalf("Publish(%q): %v", topic, err)
	}
}

type seqPayload struct {
	Seq int `json:"seq"`
}

func seqMsg(i int) []byte {
	b, _ := json.Marshal(seqPayload{Seq: i})
	return b
}

func seqOf(t testing.TB, m Message) int {
	var p seqPayload
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		t.Errorf("payload %q: %v", m.Payload, err)
		return -2
	}
	return p.Seq
}

// recv returns the next message, failing the test if none comes.
func recv(t testing.TB, s *Subscription) Message {
	t.Helper()
	select {
	case m, ok := <-s.C():
		if !ok {
			t.Fatalf("subscription to %q closed, wanted a message", s.Topic())
		}
		return m
	case <-time.After(waitTimeout):
		t.Fatalf("no message on %q within %s", s.Topic(), waitTimeout)
	}
	return Message{}
}

// waitClosed drains s until its channel is closed.
func waitClosed(t testing.TB, s *Subscription) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-s.C():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("subscription to %q still open after %s", s.Topic(), waitTimeout)
		}
	}
}

// eventually polls cond until it holds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reader consumes a subscription in the background and checks the stream:
// data in publish order, and a gap only right after a Resync.
type reader struct {
	mu      sync.Mutex
	next    int // seq expected next
	resyncs int
	gapped  bool // a Resync arrived, so the next seq may skip ahead
	errs    []string
	done    chan struct{}
}

func startReader(t testing.TB, s *Subscription) *reader {
	r := &reader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for m := range s.C() {
			r.mu.Lock()
			if m.Resync {
				r.resyncs++
				r.gapped = true
			} else if seq := seqOf(t, m); seq != r.next && (!r.gapped || seq < r.next) {
				r.errs = append(r.errs, fmt.Sprintf("got seq %d, want %d", seq, r.next))
				r.next = seq + 1
			} else {
				r.next = seq + 1
				r.gapped = false
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *reader) received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}

func (r *reader) check(t testing.TB, wantResyncs bool) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Error(e)
	}
	if !wantResyncs && r.resyncs > 0 {
		t.Errorf("healthy subscriber got %d Resync messages", r.resyncs)
	}
}

// goroutinesBack waits until the goroutine count is back to at most base.
// Counts move for reasons outside the test (runtime, timers), so this retries
// rather than comparing once.
func goroutinesBack(t testing.TB, base int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, want <= %d; stacks:\n%s", n, base, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// adminClient is a plain client on the test server, for inspection.
func adminClient(t testing.TB, rawURL string) *redis.Client {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
