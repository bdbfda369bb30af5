package pubsub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

func hubOf(b Broker) *hub {
	switch b := b.(type) {
	case *Memory:
		return b.hub
	case *Redis:
		return b.hub
	}
	panic(fmt.Sprintf("unknown broker %T", b))
}

// Every subscriber that keeps up gets every message of its topic, in publish
// order, with no Resync; other topics' messages never reach it.
func TestDeliversInOrderToEverySubscriber(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		b := im.newBroker(t)
		ctx := context.Background()
		const n, nsubs, batch = 1000, 4, 32

		var subs []*Subscription
		var readers []*reader
		for range nsubs {
			s := subscribe(t, b, ctx, "exam-1")
			subs = append(subs, s)
			readers = append(readers, startReader(t, s))
		}
		other := subscribe(t, b, ctx, "exam-2")

		// Batches smaller than the buffer, waiting for the readers in
		// between: every subscriber is healthy by construction, so any loss
		// is a bug, not lag.
		for i := range n {
			publish(t, b, "exam-1", seqMsg(i))
			if (i+1)%batch == 0 || i == n-1 {
				eventually(t, fmt.Sprintf("readers to reach %d", i+1), func() bool {
					for _, r := range readers {
						if r.received() < i+1 {
							return false
						}
					}
					return true
				})
			}
		}
		for i, r := range readers {
			r.check(t, false)
			if d := subs[i].Dropped(); d != 0 {
				t.Errorf("subscriber %d dropped %d messages", i, d)
			}
		}

		// The first message on exam-2 must be exam-2's own.
		publish(t, b, "exam-2", seqMsg(-1))
		if m := recv(t, other); m.Topic != "exam-2" || m.Resync || seqOf(t, m) != -1 {
			t.Errorf("exam-2 subscriber got %+v", m)
		}
	})
}

// Unpaced: subscribers may fall behind a publisher that never waits, but what
// they receive stays in order and every gap is announced by a Resync.
func TestLagIsAnnouncedNeverReordered(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		b := im.newBroker(t)
		ctx := context.Background()
		const n = 1000
		var readers []*reader
		for range 3 {
			readers = append(readers, startReader(t, subscribe(t, b, ctx, "burst")))
		}
		for i := range n {
			publish(t, b, "burst", seqMsg(i))
		}
		// The last messages may have been dropped too; keep publishing
		// past the end until every reader has seen something beyond it.
		i := n
		eventually(t, "readers to catch up", func() bool {
			publish(t, b, "burst", seqMsg(i))
			i++
			for _, r := range readers {
				if r.received() <= n {
					return false
				}
			}
			return true
		})
		for i, r := range readers {
			r.check(t, true)
			r.mu.Lock()
			t.Logf("reader %d: %d resyncs", i, r.resyncs)
			r.mu.Unlock()
		}
	})
}

// A subscriber that never reads neither blocks the publisher nor delays the
// others; when it finally reads it finds its buffer, then a Resync, and then
// new messages again.
func TestStuckSubscriberGetsResync(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		b := im.newBroker(t)
		ctx := context.Background()
		const n, batch = 1000, 32

		stuck := subscribe(t, b, ctx, "locks")
		healthy := subscribe(t, b, ctx, "locks")
		hr := startReader(t, healthy)

		published := make(chan error, 1)
		go func() {
			published <- func() error {
				for i := range n {
					if err := b.Publish(ctx, "locks", seqMsg(i)); err != nil {
						return err
					}
					if (i+1)%batch != 0 {
						continue
					}
					// Pace on the healthy subscriber only.
					deadline := time.Now().Add(waitTimeout)
					for hr.received() < i+1 {
						if time.Now().After(deadline) {
							return fmt.Errorf("healthy subscriber stuck at %d, want %d", hr.received(), i+1)
						}
						time.Sleep(time.Millisecond)
					}
				}
				return nil
			}()
		}()
		select {
		case err := <-published:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("publisher blocked by a subscriber that does not read")
		}
		eventually(t, "healthy subscriber to get everything", func() bool { return hr.received() == n })
		hr.check(t, false)

		eventually(t, "stuck subscriber to have dropped the overflow", func() bool {
			return stuck.Dropped() == n-DefaultBufferSize
		})
		for i := range DefaultBufferSize {
			if m := recv(t, stuck); m.Resync || seqOf(t, m) != i {
				t.Fatalf("stuck subscriber message %d: %+v", i, m)
			}
		}
		if m := recv(t, stuck); !m.Resync || m.Topic != "locks" {
			t.Fatalf("after its buffer the stuck subscriber got %+v, want a Resync", m)
		}
		if l := len(stuck.C()); l != 0 {
			t.Fatalf("%d more messages queued after the Resync", l)
		}

		publish(t, b, "locks", seqMsg(n))
		if m := recv(t, stuck); m.Resync || seqOf(t, m) != n {
			t.Fatalf("after resync the subscriber got %+v, want seq %d", m, n)
		}
	})
}

// Close and ctx cancellation end the subscription: the channel is closed, the
// hub forgets the subscriber, and later publishes neither reach nor panic.
func TestUnsubscribeStopsDelivery(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		b := im.newBroker(t)
		ctx := context.Background()
		keep := subscribe(t, b, ctx, "jobs")

		closed := subscribe(t, b, ctx, "jobs")
		cctx, cancel := context.WithCancel(ctx)
		cancelled := subscribe(t, b, cctx, "jobs")
		publish(t, b, "jobs", seqMsg(0))
		for _, s := range []*Subscription{keep, closed, cancelled} {
			if m := recv(t, s); seqOf(t, m) != 0 {
				t.Fatalf("got %+v", m)
			}
		}

		closed.Close()
		closed.Close() // idempotent
		cancel()
		waitClosed(t, closed)
		waitClosed(t, cancelled)

		publish(t, b, "jobs", seqMsg(1))
		if m := recv(t, keep); seqOf(t, m) != 1 {
			t.Fatalf("remaining subscriber got %+v", m)
		}
		h := hubOf(b)
		h.mu.RLock()
		left := len(h.topics["jobs"].subs)
		h.mu.RUnlock()
		if left != 1 {
			t.Fatalf("hub holds %d subscribers of jobs, want 1", left)
		}

		keep.Close()
		waitClosed(t, keep)
		if h.hasSubscribers("jobs") {
			t.Fatal("hub still lists jobs after its last subscriber left")
		}
		publish(t, b, "jobs", seqMsg(2))

		done, stop := context.WithCancel(ctx)
		stop()
		if _, err := b.Subscribe(done, "jobs"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe with a cancelled ctx: %v", err)
		}
	})
}

// Subscriptions own no goroutine once ended, whichever way they end.
func TestNoGoroutineLeak(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		b := im.newBroker(t)
		ctx := context.Background()
		// Warm up so connections opened lazily (and miniredis's goroutine
		// per connection) are part of the baseline.
		warm := subscribe(t, b, ctx, "warm-up")
		publish(t, b, "warm-up", seqMsg(0))
		recv(t, warm)
		warm.Close()
		base := runtime.NumGoroutine()

		var subs []*Subscription
		var cancels []context.CancelFunc
		for i := range 100 {
			sctx, cancel := context.WithCancel(ctx)
			cancels = append(cancels, cancel)
			subs = append(subs, subscribe(t, b, sctx, fmt.Sprintf("topic-%d", i%10)))
		}
		for i := range 10 {
			publish(t, b, fmt.Sprintf("topic-%d", i), seqMsg(i))
		}
		for _, s := range subs {
			recv(t, s)
		}
		var wg sync.WaitGroup
		for i, s := range subs {
			wg.Go(func() {
				if i%2 == 0 {
					cancels[i]()
				} else {
					s.Close()
				}
			})
		}
		wg.Wait()
		for _, s := range subs {
			waitClosed(t, s)
		}
		goroutinesBack(t, base)
	})
}

// Closing the broker ends every subscription, refuses further use, and stops
// the broker's own goroutines.
func TestCloseEndsEverything(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		base := runtime.NumGoroutine()
		b := im.newBroker(t)
		ctx := context.Background()
		if err := b.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		s1 := subscribe(t, b, ctx, "a")
		s2 := subscribe(t, b, ctx, "b")

		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		waitClosed(t, s1)
		waitClosed(t, s2)
		s1.Close() // after the broker: still harmless
		if _, err := b.Subscribe(ctx, "a"); !errors.Is(err, ErrClosed) {
			t.Errorf("Subscribe after Close: %v", err)
		}
		if err := b.Publish(ctx, "a", seqMsg(0)); !errors.Is(err, ErrClosed) {
			t.Errorf("Publish after Close: %v", err)
		}
		if err := b.Ping(ctx); err == nil {
			t.Error("Ping after Close succeeded")
		}
		if err := b.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		goroutinesBack(t, base)
	})
}

// A callback subscriber gets every message in order from the publishing
// goroutine, shares one decode per publish with the other subscribers, and
// hears once that it ended, whichever way it ends.
func TestSubscribeFunc(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		b := im.newBroker(t)
		type fsub struct {
			mu    sync.Mutex
			got   []int
			dec   []any
			ended chan struct{}
			calls int
		}
		start := func(ctx context.Context, topic string) (*fsub, *Subscription) {
			f := &fsub{ended: make(chan struct{}, 2)}
			s, err := b.SubscribeFunc(ctx, topic, func(m Message) {
				f.mu.Lock()
				defer f.mu.Unlock()
				v, _ := m.Decode(func(p []byte) (any, error) {
					var sp seqPayload
					err := json.Unmarshal(p, &sp)
					return &sp, err
				})
				f.got = append(f.got, seqOf(t, m))
				f.dec = append(f.dec, v)
			}, func() { f.ended <- struct{}{} })
			if err != nil {
				t.Fatalf("SubscribeFunc: %v", err)
			}
			if s.C() != nil {
				t.Fatal("a callback subscription has a channel")
			}
			return f, s
		}
		count := func(f *fsub) int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.got) }
		ended := func(f *fsub, what string) {
			t.Helper()
			select {
			case <-f.ended:
			case <-time.After(waitTimeout):
				t.Fatalf("%s: ended not called", what)
			}
			select {
			case <-f.ended:
				t.Fatalf("%s: ended called twice", what)
			case <-time.After(10 * time.Millisecond):
			}
		}

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a, sa := start(context.Background(), "f")
		c, _ := start(ctx, "f")
		d, _ := start(context.Background(), "f")
		const n = 200
		for i := range n {
			publish(t, b, "f", seqMsg(i))
		}
		eventually(t, "all delivered", func() bool { return count(a) == n && count(c) == n && count(d) == n })
		for i := range n {
			if a.got[i] != i || c.got[i] != i {
				t.Fatalf("message %d: got %d and %d", i, a.got[i], c.got[i])
			}
			if a.dec[i] != c.dec[i] || a.dec[i].(*seqPayload).Seq != i {
				t.Fatalf("message %d decoded twice or wrongly", i)
			}
		}

		sa.Close()
		ended(a, "Close")
		sa.Close()
		cancel()
		ended(c, "ctx")
		publish(t, b, "f", seqMsg(n))
		eventually(t, "the last subscriber still served", func() bool { return count(d) == n+1 })
		if count(a) != n || count(c) != n {
			t.Fatal("delivery after the end")
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		ended(d, "broker Close")
	})
}
