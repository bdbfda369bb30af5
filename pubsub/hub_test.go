package pubsub

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// The first hook runs once per topic activation, every Subscribe on the topic
// waits for it, and the last hook runs when the topic empties.
func TestHubHooks(t *testing.T) {
	release := make(chan struct{})
	var firsts, lasts atomic.Int32
	h := newHub(4, hubHooks{
		first: func(ctx context.Context, topic string) error {
			firsts.Add(1)
			<-release
			return nil
		},
		last: func(topic string) { lasts.Add(1) },
	})
	ctx := context.Background()

	got := make(chan *Subscription, 2)
	for range 2 {
		go func() {
			s, err := h.subscribe(ctx, "t")
			if err != nil {
				t.Error(err)
			}
			got <- s
		}()
	}
	eventually(t, "both subscribers registered", func() bool {
		h.mu.RLock()
		defer h.mu.RUnlock()
		return h.topics["t"] != nil && len(h.topics["t"].subs) == 2
	})
	select {
	case <-got:
		t.Fatal("Subscribe returned before the first hook finished")
	default:
	}
	close(release)
	a, b := <-got, <-got
	if n := firsts.Load(); n != 1 {
		t.Fatalf("first hook ran %d times, want 1", n)
	}

	a.Close()
	if n := lasts.Load(); n != 0 {
		t.Fatalf("last hook ran with a subscriber left")
	}
	b.Close()
	if n := lasts.Load(); n != 1 {
		t.Fatalf("last hook ran %d times, want 1", n)
	}

	c, err := h.subscribe(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if n := firsts.Load(); n != 2 {
		t.Fatalf("first hook ran %d times after reactivation, want 2", n)
	}
	c.Close()
}

// A failing first hook fails Subscribe and leaves nothing behind.
func TestHubFirstHookError(t *testing.T) {
	boom := errors.New("boom")
	var lasts atomic.Int32
	h := newHub(4, hubHooks{
		first: func(context.Context, string) error { return boom },
		last:  func(string) { lasts.Add(1) },
	})
	if _, err := h.subscribe(context.Background(), "t"); !errors.Is(err, boom) {
		t.Fatalf("Subscribe: %v, want boom", err)
	}
	if h.hasSubscribers("t") {
		t.Fatal("failed subscriber still registered")
	}
	if lasts.Load() != 1 {
		t.Fatal("last hook did not run to undo the first")
	}
}

// When the subscriber running the first hook gives up, the others waiting on
// it are not failed with its cancellation: one of them runs the hook again.
func TestHubAbandonedFirstHookIsRetried(t *testing.T) {
	var calls atomic.Int32
	entered := make(chan struct{})
	h := newHub(4, hubHooks{first: func(ctx context.Context, _ string) error {
		if calls.Add(1) == 1 {
			close(entered)
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := h.subscribe(ctx, "t")
		firstErr <- err
	}()
	<-entered

	second := make(chan error, 1)
	go func() {
		s, err := h.subscribe(context.Background(), "t")
		if err == nil {
			s.Close()
		}
		second <- err
	}()
	eventually(t, "second subscriber waiting", func() bool {
		h.mu.RLock()
		defer h.mu.RUnlock()
		return h.topics["t"] != nil && len(h.topics["t"].subs) == 2
	})
	cancel()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("first: %v", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("second subscriber failed with the first one's cancellation: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("first hook ran %d times, want 2", n)
	}
}

// The buffer holds bufSize data messages plus the Resync, never more, and
// repeated overflow queues a single Resync.
func TestHubOverflowQueuesOneResync(t *testing.T) {
	h := newHub(4, hubHooks{})
	s, err := h.subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		_ = h.publish("t", seqMsg(i))
	}
	if s.Dropped() != 6 {
		t.Fatalf("dropped %d, want 6", s.Dropped())
	}
	for i := range 4 {
		if m := <-s.C(); m.Resync || seqOf(t, m) != i {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	// Room again, but the Resync is still unread: new data goes behind it.
	_ = h.publish("t", seqMsg(10))
	if m := <-s.C(); !m.Resync {
		t.Fatalf("got %+v, want Resync", m)
	}
	if m := <-s.C(); m.Resync || seqOf(t, m) != 10 {
		t.Fatalf("got %+v, want seq 10", m)
	}
	if len(s.C()) != 0 {
		t.Fatal("more than one Resync queued")
	}

	// An external resync (reconnect) on a full buffer is covered by the
	// Resync already waiting in it.
	for i := range 10 {
		_ = h.publish("t", seqMsg(i))
	}
	_ = h.resync("t")
	if len(s.C()) != cap(s.C()) {
		t.Fatalf("len %d, want full", len(s.C()))
	}
	s.Close()
}

// Concurrent publishers on one topic: every subscriber sees the same order.
func TestHubSameOrderForAllSubscribers(t *testing.T) {
	h := newHub(2000, hubHooks{})
	ctx := context.Background()
	var subs []*Subscription
	for range 3 {
		s, err := h.subscribe(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := range 250 {
				_ = h.publish("t", seqMsg(p*1000+i))
			}
		})
	}
	wg.Wait()
	var first []int
	for i, s := range subs {
		s.Close()
		var got []int
		for m := range s.C() {
			got = append(got, seqOf(t, m))
		}
		if len(got) != 1000 {
			t.Fatalf("subscriber %d got %d messages", i, len(got))
		}
		if i == 0 {
			first = got
			continue
		}
		for j := range got {
			if got[j] != first[j] {
				t.Fatalf("subscriber %d differs at %d: %d vs %d", i, j, got[j], first[j])
			}
		}
	}
}
