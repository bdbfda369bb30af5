package server

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

func anonymousCtx(ip string) context.Context {
	return context.WithValue(context.Background(), clientIPKey{}, ip)
}

// Redis configured but unreachable: the anonymous limit still holds (counted
// in memory), other clients are still served, one warning is logged, and the
// fallback is counted.
func TestRateLimitsRedisDown(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	cfg := Config{
		RedisURL:   "redis://" + closedPort(t) + "/0",
		RateLimits: RateLimits{Anonymous: "3-M", Operations: "100-M", Mutations: "100-M", WebSocket: "100-M"},
	}
	rl, err := newRateLimiter(cfg, zap.New(core))
	if err != nil {
		t.Fatalf("a down Redis must not stop the limiter: %v", err)
	}
	t.Cleanup(func() { _ = rl.close() })
	ext := rateLimitExt{rl}
	for i := range 3 {
		if e := ext.MutateOperationParameters(anonymousCtx("192.0.2.1"), nil); e != nil {
			t.Fatalf("request %d refused: %v", i+1, e)
		}
	}
	e := ext.MutateOperationParameters(anonymousCtx("192.0.2.1"), nil)
	if e == nil || e.Extensions["code"] != "RATE_LIMITED" {
		t.Fatalf("4th anonymous request in a minute with Redis down: want RATE_LIMITED, got %v", e)
	}
	if e := ext.MutateOperationParameters(anonymousCtx("192.0.2.2"), nil); e != nil {
		t.Fatalf("another client refused with Redis down: %v", e)
	}
	fs := rl.anonymous.Store.(*failoverStore)
	if n := counterValue(fs.fallbacks); n != 5 {
		t.Errorf("fallback counter = %v, want 5", n)
	}
	if n := logs.FilterMessageSnippet("rate limit store (Redis) unavailable").Len(); n != 1 {
		t.Errorf("want one warning for the outage, got %d", n)
	}
}

// Redis dies, then comes back: counting moves to memory, then back to Redis
// once the retry period is over.
func TestRateLimitsRedisFailover(t *testing.T) {
	mr := miniredis.RunT(t)
	core, logs := observer.New(zap.InfoLevel)
	cfg := Config{
		RedisURL:   "redis://" + mr.Addr() + "/0",
		RateLimits: RateLimits{Anonymous: "100-M", Operations: "100-M", Mutations: "100-M", WebSocket: "100-M"},
	}
	rl, err := newRateLimiter(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rl.close() })
	fs := rl.anonymous.Store.(*failoverStore)
	now := time.Unix(1_800_000_000, 0)
	fs.now = func() time.Time { return now }
	ext := rateLimitExt{rl}
	charge := func() {
		t.Helper()
		if e := ext.MutateOperationParameters(anonymousCtx("192.0.2.9"), nil); e != nil {
			t.Fatalf("refused: %v", e)
		}
	}
	charge()
	if counterValue(fs.fallbacks) != 0 || len(mr.Keys()) != 1 {
		t.Fatalf("with Redis up the count must be in Redis: fallbacks %v, keys %v", counterValue(fs.fallbacks), mr.Keys())
	}
	addr := mr.Addr()
	mr.Close()
	charge() // fails over
	charge() // memory, Redis not retried yet
	if n := counterValue(fs.fallbacks); n != 2 {
		t.Fatalf("fallbacks = %v, want 2", n)
	}
	if err := mr.StartAddr(addr); err != nil {
		t.Fatal(err)
	}
	now = now.Add(rateStoreRetry)
	charge() // back on Redis
	if n := counterValue(fs.fallbacks); n != 2 {
		t.Fatalf("Redis back, still falling back: %v", n)
	}
	if logs.FilterMessageSnippet("answers again").Len() != 1 {
		t.Errorf("recovery not logged: %v", logs.All())
	}
}
