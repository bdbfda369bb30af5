package pubsub

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Two brokers on one server behave as two `serve` processes: each delivers
// the other's messages, and a message published right after Subscribe
// returns is never missed (Subscribe waits for the server's acknowledgement).
func TestRedisTwoProcesses(t *testing.T) {
	u := testRedisURL(t)
	prefix := "test:" + randomID(t) + ":"
	a := newRedisBroker(t, u, prefix)
	b := newRedisBroker(t, u, prefix)
	ctx := context.Background()

	for i := range 50 {
		topic := fmt.Sprintf("exam-%d", i)
		sa := subscribe(t, a, ctx, topic)
		sb := subscribe(t, b, ctx, topic)
		// One publish, no retry: a subscription not yet active on the
		// server would lose it.
		from := a
		if i%2 == 1 {
			from = b
		}
		publish(t, from, topic, seqMsg(i))
		for _, s := range []*Subscription{sa, sb} {
			if m := recv(t, s); m.Resync || m.Topic != topic || seqOf(t, m) != i {
				t.Fatalf("topic %s: got %+v", topic, m)
			}
		}
	}

	// A topic only b listens to still reaches b from a.
	only := subscribe(t, b, ctx, "only-b")
	publish(t, a, "only-b", seqMsg(7))
	if m := recv(t, only); seqOf(t, m) != 7 {
		t.Fatalf("got %+v", m)
	}
}

// Brokers with different prefixes share a server without hearing each other.
func TestRedisPrefixIsolates(t *testing.T) {
	u := testRedisURL(t)
	a := newRedisBroker(t, u, "test:"+randomID(t)+":")
	b := newRedisBroker(t, u, "test:"+randomID(t)+":")
	ctx := context.Background()
	sb := subscribe(t, b, ctx, "t")
	publish(t, a, "t", seqMsg(1))
	publish(t, b, "t", seqMsg(2))
	if m := recv(t, sb); seqOf(t, m) != 2 {
		t.Fatalf("b heard a's message: %+v", m)
	}
}

// The server-side subscription follows local interest, even when the first
// subscribe and the last unsubscribe of a topic race each other.
func TestRedisServerSubscriptionFollowsLocalInterest(t *testing.T) {
	u := testRedisURL(t)
	prefix := "test:" + randomID(t) + ":"
	r := newRedisBroker(t, u, prefix)
	admin := adminClient(t, u)
	ctx := context.Background()
	numsub := func(topic string) int64 {
		n, err := admin.PubSubNumSub(ctx, prefix+topic).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n[prefix+topic]
	}

	s := subscribe(t, r, ctx, "t")
	if n := numsub("t"); n != 1 {
		t.Fatalf("NUMSUB after Subscribe = %d, want 1", n)
	}
	s.Close()
	eventually(t, "UNSUBSCRIBE on the server", func() bool { return numsub("t") == 0 })

	// Churn: goroutines subscribe and unsubscribe the same topic while one
	// long-lived subscriber arrives in the middle. It must end up served.
	var wg sync.WaitGroup
	var keeper *Subscription
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				if g == 0 && i == 20 {
					k, err := r.Subscribe(ctx, "churn")
					if err != nil {
						t.Error(err)
						return
					}
					keeper = k
				}
				c, err := r.Subscribe(ctx, "churn")
				if err != nil {
					t.Error(err)
					return
				}
				c.Close()
			}
		})
	}
	wg.Wait()
	if keeper == nil {
		t.FailNow()
	}
	publish(t, newRedisBroker(t, u, prefix), "churn", seqMsg(1))
	if m := recv(t, keeper); m.Resync || seqOf(t, m) != 1 {
		t.Fatalf("keeper got %+v", m)
	}
	keeper.Close()
	eventually(t, "no server subscription left", func() bool { return numsub("churn") == 0 })
}

// pubsubClientID finds the pub/sub connection of the broker whose connections
// are named name.
func pubsubClientID(t testing.TB, admin *redis.Client, name string) (int64, bool) {
	list, err := admin.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(list, "\n") {
		fields := map[string]string{}
		for kv := range strings.FieldsSeq(line) {
			k, v, _ := strings.Cut(kv, "=")
			fields[k] = v
		}
		if fields["name"] == name && fields["sub"] != "" && fields["sub"] != "0" {
			id, err := strconv.ParseInt(fields["id"], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return id, true
		}
	}
	return 0, false
}

// Killing the pub/sub connection makes go-redis reconnect and resubscribe;
// every local subscriber is told to resync, and delivery resumes.
func TestRedisReconnectResyncs(t *testing.T) {
	u := testRedisURL(t)
	prefix := "test:" + randomID(t) + ":"
	name := "korrigo-test-" + randomID(t)
	r := newRedisBroker(t, withClientName(t, u, name), prefix)
	other := newRedisBroker(t, u, prefix)
	admin := adminClient(t, u)
	ctx := context.Background()

	subs := []*Subscription{
		subscribe(t, r, ctx, "a"), subscribe(t, r, ctx, "a"), subscribe(t, r, ctx, "b"),
	}
	publish(t, other, "a", seqMsg(0))
	publish(t, other, "b", seqMsg(0))
	for _, s := range subs {
		recv(t, s)
	}

	// Kill this broker's connection only: other tests may share the server.
	id, ok := pubsubClientID(t, admin, name)
	if !ok {
		t.Fatal("pub/sub connection not found in CLIENT LIST")
	}
	if err := admin.ClientKillByFilter(ctx, "ID", strconv.FormatInt(id, 10)).Err(); err != nil {
		t.Fatalf("CLIENT KILL: %v", err)
	}

	for _, s := range subs {
		if m := recv(t, s); !m.Resync || m.Topic != s.Topic() {
			t.Fatalf("after reconnect %s got %+v, want Resync", s.Topic(), m)
		}
	}
	if newID, ok := pubsubClientID(t, admin, name); !ok || newID == id {
		t.Fatalf("no new pub/sub connection (old %d, new %d, found %v)", id, newID, ok)
	}
	publish(t, other, "a", seqMsg(1))
	publish(t, other, "b", seqMsg(1))
	for _, s := range subs {
		if m := recv(t, s); m.Resync || seqOf(t, m) != 1 {
			t.Fatalf("after resync %s got %+v", s.Topic(), m)
		}
	}
}

// Same with miniredis restarted under the broker: runs without a server.
func TestRedisRestartResyncsMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	r := newRedisBroker(t, "redis://"+mr.Addr(), DefaultPrefix)
	ctx := context.Background()
	s := subscribe(t, r, ctx, "a")
	publish(t, r, "a", seqMsg(0))
	recv(t, s)

	mr.Close()
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, s); !m.Resync {
		t.Fatalf("after restart got %+v, want Resync", m)
	}
	publish(t, r, "a", seqMsg(1))
	if m := recv(t, s); m.Resync || seqOf(t, m) != 1 {
		t.Fatalf("after resync got %+v", m)
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, "", zap.NewNop())
	if err != nil || b.Name() != "memory" {
		t.Fatalf("Open(\"\") = %v, %v", b, err)
	}
	_ = b.Close()

	mr := miniredis.RunT(t)
	addr := mr.Addr()
	b, err = Open(ctx, "redis://"+addr, nil)
	if err != nil || b.Name() != "redis" {
		t.Fatalf("Open(redis) = %v, %v", b, err)
	}
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	_ = b.Close()

	if _, err := Open(ctx, "redis://user:s3cret@[::1", nil); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad URL: %v", err)
	}
	mr.Close()
	if _, err := Open(ctx, "redis://"+addr, nil); err == nil {
		t.Fatal("Open succeeded with the server down")
	}
}
