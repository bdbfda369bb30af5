package auth

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/auditlog"
)

// LoginKey is what a login lockout counts on: the account and the client IP, so
// that an attacker guessing one account locks out only themselves, not the
// account's owner elsewhere nor the school's other users behind the same NAT.
type LoginKey struct {
	Email string // lower-cased, as typed (the account may not exist)
	IP    string
}

// LoginLimiter decides whether a login attempt may go ahead.
type LoginLimiter interface {
	// RetryAfter returns how long key must wait before trying again; 0 when it
	// may try now.
	RetryAfter(ctx context.Context, key LoginKey) (time.Duration, error)
	// Failed and Succeeded report the outcome of an attempt RetryAfter allowed.
	Failed(ctx context.Context, key LoginKey) error
	Succeeded(ctx context.Context, key LoginKey) error
}

// AuditLimiter counts the LOGIN_FAILED rows the service writes to the audit log
// anyway, so the lockout holds across replicas with nothing but the database.
// A success resets the count. Failed and Succeeded record nothing: the audit
// rows are the record.
type AuditLimiter struct {
	client *ent.Client
	max    int
	window time.Duration
	now    func() time.Time
}

// NewAuditLimiter allows max failures per key within window.
func NewAuditLimiter(client *ent.Client, max int, window time.Duration, now func() time.Time) *AuditLimiter {
	return &AuditLimiter{client: client, max: max, window: window, now: now}
}

// RetryAfter implements LoginLimiter.
func (l *AuditLimiter) RetryAfter(ctx context.Context, key LoginKey) (time.Duration, error) {
	ctx = rules.System(ctx)
	now := l.now()
	since := now.Add(-l.window)
	target := truncate(key.Email, maxTargetLen)
	ip := truncate(key.IP, maxIPLen)

	last, err := l.client.AuditLog.Query().
		Where(auditlog.Action(ActionLoginSucceeded), auditlog.Target(target), auditlog.IP(ip), auditlog.AtGT(since)).
		Order(ent.Desc(auditlog.FieldAt)).
		First(ctx)
	switch {
	case err == nil:
		since = last.At
	case !ent.IsNotFound(err):
		return 0, fmt.Errorf("login limiter: last success: %w", err)
	}
	failures, err := l.client.AuditLog.Query().
		Where(auditlog.Action(ActionLoginFailed), auditlog.Target(target), auditlog.IP(ip), auditlog.AtGT(since)).
		Order(ent.Desc(auditlog.FieldAt)).
		Limit(l.max).
		Select(auditlog.FieldAt).
		All(ctx)
	if err != nil {
		return 0, fmt.Errorf("login limiter: count failures: %w", err)
	}
	if len(failures) < l.max {
		return 0, nil
	}
	// The window slides: the key may try again once the oldest of the last max
	// failures leaves it.
	wait := failures[l.max-1].At.Add(l.window).Sub(now)
	if wait <= 0 {
		return 0, nil
	}
	return wait, nil
}

// Failed implements LoginLimiter.
func (l *AuditLimiter) Failed(context.Context, LoginKey) error { return nil }

// Succeeded implements LoginLimiter.
func (l *AuditLimiter) Succeeded(context.Context, LoginKey) error { return nil }

// keyLocks serializes the login attempts of one key within this process.
// Without it, a burst of parallel guesses would all pass RetryAfter before the
// first failure is recorded, and all be verified. Across replicas a burst can
// still get a few extra guesses (one per replica); the per-IP HTTP rate limit
// bounds those.
type keyLocks struct {
	mu    sync.Mutex
	locks map[LoginKey]*keyLock
}

type keyLock struct {
	ch   chan struct{} // a channel, not a sync.Mutex, so waiting honours ctx
	refs int
}

// lock waits for key and returns its unlock function.
func (k *keyLocks) lock(ctx context.Context, key LoginKey) (func(), error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[LoginKey]*keyLock)
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, fmt.Errorf("wait for a concurrent login of the same account: %w", ctx.Err())
	}
}
