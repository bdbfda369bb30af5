package pubsub

import (
	"context"
	"testing"
)

// BenchmarkPublishReceive measures one publish→receive round trip (ns/op is
// the latency seen by a subscriber, publisher and subscriber in one process).
func BenchmarkPublishReceive(b *testing.B) {
	payload := []byte(`{"copyId":"01J9Z6","version":42,"holder":"teacher@example.org"}`)
	run := func(b *testing.B, br Broker) {
		ctx := context.Background()
		s, err := br.Subscribe(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.ReportAllocs()
		for b.Loop() {
			if err := br.Publish(ctx, "bench", payload); err != nil {
				b.Fatal(err)
			}
			if m := <-s.C(); m.Resync {
				b.Fatal("unexpected Resync")
			}
		}
	}
	b.Run("memory", func(b *testing.B) {
		m := NewMemory()
		defer m.Close()
		run(b, m)
	})
	b.Run("redis", func(b *testing.B) {
		run(b, newRedisBroker(b, testRedisURL(b), "bench:"+randomID(b)+":"))
	})
}
