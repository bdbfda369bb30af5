package grading

import (
	"context"
	"crypto/rand"
	stdsql "database/sql"
	"encoding/base64"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/copylock"
	"github.com/korrigo/korrigo/ids"
)

// Lease durations (DESIGN.md §6). Clients renew every TTL/3.
const (
	DefaultLockTTL = 300
	MinLockTTL     = 30
	MaxLockTTL     = 3600
)

// sweepBatch bounds one sweep's transaction; a backlog is cleared over a few ticks.
const sweepBatch = 500

// upsertLease is the whole acquisition rule in one compare-and-set statement,
// valid on PostgreSQL and SQLite. A free copy gets a new row. On the existing row
// (one per copy), the update happens only when the caller already holds the lease
// (it is renewed and keeps its token, unless it had expired: an expired token
// stays dead) or when the lease has expired (taken over with the new token).
// Otherwise the WHERE is false and no row is affected: someone else holds it.
// acquired_at is the start of the current term and expires_at − acquired_at the
// lease's TTL, which RenewLock reuses.
const upsertLease = `INSERT INTO copy_locks (id, copy_id, owner_id, token, acquired_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (copy_id) DO UPDATE SET
	token = CASE WHEN copy_locks.owner_id = excluded.owner_id AND copy_locks.expires_at > excluded.acquired_at
		THEN copy_locks.token ELSE excluded.token END,
	owner_id = excluded.owner_id,
	acquired_at = excluded.acquired_at,
	expires_at = excluded.expires_at
WHERE copy_locks.owner_id = excluded.owner_id OR copy_locks.expires_at <= excluded.acquired_at`

// AcquireLock takes the grading lease of a copy for the caller, or renews it when
// they already hold it (same token: a second tab of the same corrector works).
// Held by someone else → LOCKED with the holder and expiry. ttlSeconds defaults
// to DefaultLockTTL.
func (s *Service) AcquireLock(ctx context.Context, copyID string, ttlSeconds *int) (*ent.CopyLock, error) {
	v, err := grader(ctx)
	if err != nil {
		return nil, err
	}
	ttl := DefaultLockTTL
	if ttlSeconds != nil {
		ttl = *ttlSeconds
	}
	if ttl < MinLockTTL || ttl > MaxLockTTL {
		return nil, apperr.BadField("ttlSeconds", "the lock TTL must be between %d and %d seconds", MinLockTTL, MaxLockTTL)
	}
	token := newToken()
	var (
		lease *ent.CopyLock
		ev    LockEvent
	)
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		c, err := s.lockCopy(ctx, tx, v, copyID)
		if err != nil {
			return err
		}
		if err := gradable(c); err != nil {
			return err
		}
		now := s.clock()
		if lease, err = s.upsertLease(ctx, tx, c.ID, v.UserID, token, now, now.Add(time.Duration(ttl)*time.Second)); err != nil {
			return err
		}
		name, err := nameOf(ctx, tx, v)
		if err != nil {
			return err
		}
		ev = LockEvent{ExamID: c.ExamID, CopyID: c.ID, Kind: LockRenewed, OwnerID: v.UserID, OwnerName: name,
			ExpiresAt: lease.ExpiresAt, CopyVersion: c.Version, At: now}
		if lease.Token != token {
			return nil // the caller's live lease, renewed
		}
		ev.Kind = LockAcquired
		return s.event(ctx, tx, c.ID, ActionLockAcquired, map[string]any{"ttlSeconds": ttl}, now)
	})
	if err != nil {
		return nil, fail(err, "acquire lock on %s", copyID)
	}
	s.pub.CopyLockChanged(afterCommit(ctx), ev)
	return lease.Unwrap(), nil
}

// upsertLease runs the compare-and-set and returns the caller's lease, or LOCKED
// naming the holder.
func (s *Service) upsertLease(ctx context.Context, tx *ent.Tx, copyID, ownerID, token string, now, expires time.Time) (*ent.CopyLock, error) {
	res, err := tx.ExecContext(ctx, s.rebind(upsertLease), ids.New(ids.CopyLock), copyID, ownerID, token, now, expires)
	if err != nil {
		return nil, fmt.Errorf("upsert lease: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, fmt.Errorf("upsert lease: %w", err)
	}
	if n == 0 {
		// Every lease change but the sweeper's locks the copy row first, as we
		// did, and the sweeper only removes expired leases: the live lease that
		// refused us is still there, and still its holder's.
		holder, expiresAt, err := s.leaseHolder(ctx, tx, copyID)
		if err != nil {
			return nil, err
		}
		return nil, apperr.LockedBy(holder, expiresAt)
	}
	lease, err := tx.CopyLock.Query().Where(copylock.CopyID(copyID)).Only(system(ctx))
	if err != nil {
		return nil, fmt.Errorf("read lease: %w", err)
	}
	return lease, nil
}

// leaseHolder reads who holds a copy's lease and until when, in one statement.
func (s *Service) leaseHolder(ctx context.Context, tx *ent.Tx, copyID string) (apperr.LockOwner, time.Time, error) {
	rows, err := tx.QueryContext(ctx, s.rebind(`SELECT l.owner_id, u.name, l.expires_at
FROM copy_locks l JOIN users u ON u.id = l.owner_id WHERE l.copy_id = ?`), copyID)
	if err != nil {
		return apperr.LockOwner{}, time.Time{}, fmt.Errorf("read lease holder: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return apperr.LockOwner{}, time.Time{}, fmt.Errorf("read lease holder: %w", err)
		}
		return apperr.LockOwner{}, time.Time{}, fmt.Errorf("read lease holder: %w", stdsql.ErrNoRows)
	}
	var (
		owner   apperr.LockOwner
		expires time.Time
	)
	if err := rows.Scan(&owner.ID, &owner.Name, &expires); err != nil {
		return apperr.LockOwner{}, time.Time{}, fmt.Errorf("read lease holder: %w", err)
	}
	return owner, expires, rows.Close()
}

// RenewLock extends the caller's live lease by its TTL. A wrong token, someone
// else's lease or an expired one → LOCK_REQUIRED (acquire it again).
func (s *Service) RenewLock(ctx context.Context, copyID, token string) (*ent.CopyLock, error) {
	v, err := grader(ctx)
	if err != nil {
		return nil, err
	}
	var (
		lease *ent.CopyLock
		ev    LockEvent
	)
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		c, err := s.lockCopy(ctx, tx, v, copyID)
		if err != nil {
			return err
		}
		if err := gradable(c); err != nil {
			return err
		}
		now := s.clock()
		l, err := s.liveLease(ctx, tx, c.ID, v, token, now)
		if err != nil {
			return err
		}
		ttl := min(max(l.ExpiresAt.Sub(l.AcquiredAt), MinLockTTL*time.Second), MaxLockTTL*time.Second)
		lease, err = l.Update().SetAcquiredAt(now).SetExpiresAt(now.Add(ttl)).Save(system(ctx))
		if err != nil {
			return fmt.Errorf("extend lease: %w", err)
		}
		name, err := nameOf(ctx, tx, v)
		if err != nil {
			return err
		}
		ev = LockEvent{ExamID: c.ExamID, CopyID: c.ID, Kind: LockRenewed, OwnerID: v.UserID, OwnerName: name,
			ExpiresAt: lease.ExpiresAt, CopyVersion: c.Version, At: now}
		return nil
	})
	if err != nil {
		return nil, fail(err, "renew lock on %s", copyID)
	}
	s.pub.CopyLockChanged(afterCommit(ctx), ev)
	return lease.Unwrap(), nil
}

// ReleaseLock ends the caller's lease (expired or not: it is theirs). A token that
// is not the current lease's → LOCK_REQUIRED.
func (s *Service) ReleaseLock(ctx context.Context, copyID, token string) (bool, error) {
	v, err := grader(ctx)
	if err != nil {
		return false, err
	}
	var ev LockEvent
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		c, err := s.lockCopy(ctx, tx, v, copyID)
		if err != nil {
			return err
		}
		if token == "" {
			return lockRequired(c.ID)
		}
		n, err := tx.CopyLock.Delete().
			Where(copylock.CopyID(c.ID), copylock.Token(token), copylock.OwnerID(v.UserID)).
			Exec(system(ctx))
		switch {
		case err != nil:
			return fmt.Errorf("delete lease: %w", err)
		case n == 0:
			return lockRequired(c.ID)
		}
		name, err := nameOf(ctx, tx, v)
		if err != nil {
			return err
		}
		now := s.clock()
		ev = LockEvent{ExamID: c.ExamID, CopyID: c.ID, Kind: LockReleased, OwnerID: v.UserID, OwnerName: name,
			CopyVersion: c.Version, At: now}
		return s.event(ctx, tx, c.ID, ActionLockReleased, nil, now)
	})
	if err != nil {
		return false, fail(err, "release lock on %s", copyID)
	}
	s.pub.CopyLockChanged(afterCommit(ctx), ev)
	return true, nil
}

// BreakLock ends whoever's lease on a copy (admins). It reports whether there was
// one.
func (s *Service) BreakLock(ctx context.Context, copyID string) (bool, error) {
	v, err := admin(ctx)
	if err != nil {
		return false, err
	}
	var ev *LockEvent
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		c, err := s.lockCopy(ctx, tx, v, copyID)
		if err != nil {
			return err
		}
		l, err := tx.CopyLock.Query().Where(copylock.CopyID(c.ID)).WithOwner().Only(system(ctx))
		switch {
		case ent.IsNotFound(err):
			return nil
		case err != nil:
			return fmt.Errorf("read lease: %w", err)
		}
		if err := tx.CopyLock.DeleteOne(l).Exec(system(ctx)); err != nil {
			return fmt.Errorf("delete lease: %w", err)
		}
		now := s.clock()
		ev = &LockEvent{ExamID: c.ExamID, CopyID: c.ID, Kind: LockBroken, OwnerID: l.OwnerID,
			OwnerName: l.Edges.Owner.Name, CopyVersion: c.Version, At: now}
		return s.event(ctx, tx, c.ID, ActionLockBroken,
			map[string]any{"ownerId": l.OwnerID, "expiresAt": l.ExpiresAt}, now)
	})
	if err != nil {
		return false, fail(err, "break lock on %s", copyID)
	}
	if ev == nil {
		return false, nil
	}
	s.pub.CopyLockChanged(afterCommit(ctx), *ev)
	return true, nil
}

// CurrentLock is the copy's live lease as the caller may see it (read rules
// apply), nil when the copy is free, its lease expired, or it is not visible.
func (s *Service) CurrentLock(ctx context.Context, copyID string) (*ent.CopyLock, error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	l, err := s.db.Client.CopyLock.Query().
		Where(copylock.CopyID(copyID), copylock.ExpiresAtGT(s.clock())).
		Only(ctx)
	switch {
	case ent.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read lock of %s: %w", copyID, err)
	}
	return l, nil
}

// SweepExpiredLocks deletes the leases expired at now and publishes EXPIRED for
// each. A lease taken over or renewed meanwhile is left alone (the delete
// re-checks the expiry).
func (s *Service) SweepExpiredLocks(ctx context.Context, now time.Time) (int, error) {
	now = storedTime(now)
	var events []LockEvent
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		expired, err := tx.CopyLock.Query().
			Where(copylock.ExpiresAtLTE(now)).
			WithOwner().
			WithCopy().
			Limit(sweepBatch).
			All(system(ctx))
		if err != nil {
			return fmt.Errorf("list expired leases: %w", err)
		}
		for _, l := range expired {
			n, err := tx.CopyLock.Delete().Where(copylock.ID(l.ID), copylock.ExpiresAtLTE(now)).Exec(system(ctx))
			if err != nil {
				return fmt.Errorf("delete lease %s: %w", l.ID, err)
			}
			if n == 0 {
				continue
			}
			c := l.Edges.Copy
			events = append(events, LockEvent{ExamID: c.ExamID, CopyID: c.ID, Kind: LockExpired, OwnerID: l.OwnerID,
				OwnerName: l.Edges.Owner.Name, CopyVersion: c.Version, At: now})
			err = s.event(ctx, tx, c.ID, ActionLockExpired,
				map[string]any{"ownerId": l.OwnerID, "expiresAt": l.ExpiresAt}, now)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sweep expired leases: %w", err)
	}
	for _, ev := range events {
		s.pub.CopyLockChanged(afterCommit(ctx), ev)
	}
	return len(events), nil
}

// RunSweeper sweeps expired leases every interval until ctx ends (server use).
func (s *Service) RunSweeper(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.SweepExpiredLocks(ctx, s.now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("lease sweep failed", zap.Error(err))
		case n > 0:
			s.log.Debug("expired leases swept", zap.Int("count", n))
		}
	}
}

// liveLease is the caller's unexpired lease on the copy under token, or
// LOCK_REQUIRED. It is read in the write's own transaction, after the copy row
// was locked: the lease cannot be released, broken or taken over before commit.
func (s *Service) liveLease(ctx context.Context, tx *ent.Tx, copyID string, v *viewer.Viewer, token string, now time.Time) (*ent.CopyLock, error) {
	if token == "" {
		return nil, lockRequired(copyID)
	}
	l, err := tx.CopyLock.Query().
		Where(copylock.CopyID(copyID), copylock.Token(token), copylock.OwnerID(v.UserID), copylock.ExpiresAtGT(now)).
		Only(system(ctx))
	switch {
	case ent.IsNotFound(err):
		return nil, lockRequired(copyID)
	case err != nil:
		return nil, fmt.Errorf("read lease: %w", err)
	}
	return l, nil
}

// requireLease is liveLease for writes that only need the check.
func (s *Service) requireLease(ctx context.Context, tx *ent.Tx, c *ent.ExamCopy, v *viewer.Viewer, token string) error {
	_, err := s.liveLease(ctx, tx, c.ID, v, token, s.clock())
	return err
}

func lockRequired(copyID string) *apperr.Error {
	return apperr.LockRequiredf("you hold no live lease on copy %s with this token: acquire its lock again", copyID)
}

// newToken is a lease secret: 32 random bytes, base64url.
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (Go ≥ 1.24 crashes instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
