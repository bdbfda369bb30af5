package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
	sredis "github.com/ulule/limiter/v3/drivers/store/redis"
	"go.uber.org/zap"
)

// Rate-limit store failover (KORRIGO_REDIS_URL set, Redis unreachable). The
// limits neither vanish (fail-open would leave login and the schema explorer
// unthrottled exactly when something is wrong) nor refuse everyone
// (fail-closed would turn a Redis outage into a full outage): each instance
// counts in its own memory until Redis answers again, so with N replicas a
// client gets at most N times its rate. The login lockout counts in the
// database (auth.AuditLimiter) and does not depend on Redis at all.
const (
	// rateStoreRetry is how long the memory store serves after a Redis error
	// before Redis is tried again (a dead Redis costs one failed call per
	// period, not one per request).
	rateStoreRetry = 5 * time.Second
	// rateStoreWarnEvery spaces the warnings while Redis stays down.
	rateStoreWarnEvery = time.Minute
)

// failoverStore is a limiter.Store over Redis that falls back to an
// in-process memory store while Redis fails.
type failoverStore struct {
	redis     func() (limiter.Store, error) // the Redis store, created on first success
	memory    limiter.Store
	log       *zap.Logger
	fallbacks prometheus.Counter
	now       func() time.Time
	retry     time.Duration
	warnEvery time.Duration

	mu        sync.Mutex
	downUntil time.Time // Redis is not tried before this
	lastWarn  time.Time
	down      bool
}

// newRedisRateStore wraps a Redis client in a failoverStore. The client gets
// short timeouts: a rate-limit decision must not wait for a dead Redis.
func newRedisRateStore(url string, opts limiter.StoreOptions, log *zap.Logger) (*failoverStore, *redis.Client, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, nil, fmt.Errorf("rate limits: KORRIGO_REDIS_URL: %w", err)
	}
	o.DialTimeout = min(orDefault(o.DialTimeout, time.Second), time.Second)
	o.ReadTimeout = min(orDefault(o.ReadTimeout, 500*time.Millisecond), 500*time.Millisecond)
	o.WriteTimeout = min(orDefault(o.WriteTimeout, 500*time.Millisecond), 500*time.Millisecond)
	o.MaxRetries = 0
	client := redis.NewClient(o)
	var (
		mu    sync.Mutex
		store limiter.Store
	)
	s := &failoverStore{
		redis: func() (limiter.Store, error) {
			mu.Lock()
			defer mu.Unlock()
			if store != nil {
				return store, nil
			}
			st, err := sredis.NewStoreWithOptions(client, opts) // loads the Lua scripts
			if err != nil {
				return nil, err
			}
			store = st
			return st, nil
		},
		memory: memory.NewStoreWithOptions(opts),
		log:    log,
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "korrigo_rate_limit_fallback_total",
			Help: "Rate-limit decisions taken in process memory because Redis failed.",
		}),
		now:       time.Now,
		retry:     rateStoreRetry,
		warnEvery: rateStoreWarnEvery,
	}
	return s, client, nil
}

func (s *failoverStore) do(ctx context.Context, f func(limiter.Store) (limiter.Context, error)) (limiter.Context, error) {
	if s.tryRedis() {
		st, err := s.redis()
		if err == nil {
			var c limiter.Context
			if c, err = f(st); err == nil {
				s.recovered()
				return c, nil
			}
		}
		s.failed(err)
	}
	s.fallbacks.Inc()
	return f(s.memory)
}

func (s *failoverStore) tryRedis() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.now().Before(s.downUntil)
}

func (s *failoverStore) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.downUntil = now.Add(s.retry)
	s.down = true
	if now.Sub(s.lastWarn) >= s.warnEvery {
		s.lastWarn = now
		s.log.Warn("rate limit store (Redis) unavailable: counting in this process's memory until it answers",
			zap.Error(err), zap.Duration("retry_every", s.retry))
	}
}

func (s *failoverStore) recovered() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.down = false
		s.lastWarn = time.Time{}
		s.log.Info("rate limit store (Redis) answers again")
	}
}

func (s *failoverStore) Get(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return s.do(ctx, func(st limiter.Store) (limiter.Context, error) { return st.Get(ctx, key, rate) })
}

func (s *failoverStore) Peek(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return s.do(ctx, func(st limiter.Store) (limiter.Context, error) { return st.Peek(ctx, key, rate) })
}

func (s *failoverStore) Reset(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return s.do(ctx, func(st limiter.Store) (limiter.Context, error) { return st.Reset(ctx, key, rate) })
}

func (s *failoverStore) Increment(ctx context.Context, key string, count int64, rate limiter.Rate) (limiter.Context, error) {
	return s.do(ctx, func(st limiter.Store) (limiter.Context, error) { return st.Increment(ctx, key, count, rate) })
}
