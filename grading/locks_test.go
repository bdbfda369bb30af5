package grading

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/copylock"
	"github.com/korrigo/korrigo/ent/gradingevent"
	"github.com/korrigo/korrigo/ent/user"
)

// 50 callers race for a free copy, 100 times: exactly one lease each round, the
// 49 others LOCKED naming the winner, nothing else.
func TestAcquireLockRace(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		racers, rounds := 50, 100
		if testing.Short() { // the full run takes 15–20 s per database with -race on 2 idle cores
			rounds = 20
		}
		// The assigned corrector and 49 admins: all allowed, all distinct.
		users := []*ent.User{f.teacher}
		for len(users) < racers {
			users = append(users, f.user(user.RoleADMIN, "Admin"))
		}
		began := time.Now()
		for round := range rounds {
			leases := make([]*ent.CopyLock, racers)
			errs := make([]error, racers)
			race(racers, func(i int) {
				leases[i], errs[i] = f.svc.AcquireLock(as(users[i]), f.copy.ID, nil)
			})
			winner := -1
			for i, err := range errs {
				if err == nil {
					if winner >= 0 {
						t.Fatalf("round %d: two winners, %s and %s", round, users[winner].ID, users[i].ID)
					}
					winner = i
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: nobody got the lease: %v", round, errs[0])
			}
			for i, err := range errs {
				if i == winner {
					continue
				}
				e := wantCode(t, err, apperr.Locked, "loser")
				if owner := lockOwner(t, e); owner.ID != users[winner].ID || owner.Name != users[winner].Name {
					t.Fatalf("round %d: LOCKED names %+v, the winner is %s", round, owner, users[winner].ID)
				}
			}
			held, err := d.Client.CopyLock.Query().Where(copylock.CopyID(f.copy.ID)).All(f.sys)
			if err != nil || len(held) != 1 || held[0].OwnerID != users[winner].ID || held[0].Token != leases[winner].Token {
				t.Fatalf("round %d: stored leases %v (err %v), want the winner's", round, held, err)
			}
			if ok, err := f.svc.ReleaseLock(as(users[winner]), f.copy.ID, leases[winner].Token); !ok || err != nil {
				t.Fatalf("round %d: release: %v %v", round, ok, err)
			}
		}
		t.Logf("%d rounds × %d racers on %s: %v", rounds, racers, d.Dialect, time.Since(began))
		acquired, _ := d.Client.GradingEvent.Query().
			Where(gradingevent.CopyID(f.copy.ID), gradingevent.Action(ActionLockAcquired)).Count(f.sys)
		if acquired != rounds {
			t.Errorf("%d LOCK_ACQUIRED events, want %d", acquired, rounds)
		}
	})
}

// A live lease cannot be taken; an expired one can, and its old token is dead
// for every write, even before anyone takes the copy.
func TestLockExpiry(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		old := f.acquire(f.teacher, f.copy)

		_, err := f.svc.AcquireLock(as(f.admin), f.copy.ID, nil)
		if owner := lockOwner(t, wantCode(t, err, apperr.Locked, "take a live lease")); owner.ID != f.teacher.ID {
			t.Fatalf("LOCKED names %s", owner.ID)
		}

		f.expire(f.copy)
		_, err = f.svc.SetAppreciation(as(f.teacher), f.copy.ID, old, "Bien")
		wantCode(t, err, apperr.LockRequired, "write with an expired lease nobody took")
		_, err = f.svc.RenewLock(as(f.teacher), f.copy.ID, old)
		wantCode(t, err, apperr.LockRequired, "renew an expired lease")
		if l, err := f.svc.CurrentLock(as(f.admin), f.copy.ID); l != nil || err != nil {
			t.Fatalf("CurrentLock of an expired lease: %v %v", l, err)
		}

		l, err := f.svc.AcquireLock(as(f.admin), f.copy.ID, nil)
		if err != nil {
			t.Fatalf("take over an expired lease: %v", err)
		}
		if l.OwnerID != f.admin.ID || l.Token == old {
			t.Fatalf("taken-over lease: owner %s, same token %v", l.OwnerID, l.Token == old)
		}
		_, err = f.svc.SetAppreciation(as(f.teacher), f.copy.ID, old, "Bien")
		wantCode(t, err, apperr.LockRequired, "write with the old token")
		_, err = f.svc.ReleaseLock(as(f.teacher), f.copy.ID, old)
		wantCode(t, err, apperr.LockRequired, "release with the old token")
		_, err = f.svc.AcquireLock(as(f.teacher), f.copy.ID, nil)
		if owner := lockOwner(t, wantCode(t, err, apperr.Locked, "the old holder")); owner.ID != f.admin.ID {
			t.Fatalf("LOCKED names %s", owner.ID)
		}

		// The holder re-acquiring an expired lease of their own gets a new token too.
		f.expire(f.copy)
		again, err := f.svc.AcquireLock(as(f.admin), f.copy.ID, nil)
		if err != nil || again.Token == l.Token {
			t.Fatalf("re-acquire own expired lease: err %v, same token %v", err, err == nil && again.Token == l.Token)
		}
	})
}

// Re-acquiring a live lease keeps its token and extends it (a second tab works).
func TestReacquireAndRenew(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ttl := 60
		first, err := f.svc.AcquireLock(as(f.teacher), f.copy.ID, &ttl)
		if err != nil {
			t.Fatal(err)
		}
		if got := first.ExpiresAt.Sub(first.AcquiredAt); got != 60*time.Second {
			t.Fatalf("lease of %v, want 60s", got)
		}
		// Pretend time passed: the lease started earlier and expires sooner.
		_, err = d.Client.CopyLock.UpdateOneID(first.ID).
			SetAcquiredAt(first.AcquiredAt.Add(-30 * time.Second)).
			SetExpiresAt(first.ExpiresAt.Add(-30 * time.Second)).
			Save(f.sys)
		if err != nil {
			t.Fatal(err)
		}
		second, err := f.svc.AcquireLock(as(f.teacher), f.copy.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if second.Token != first.Token || second.ID != first.ID {
			t.Fatal("re-acquire by the holder changed the lease")
		}
		if !second.ExpiresAt.After(first.ExpiresAt.Add(-30 * time.Second)) {
			t.Fatal("re-acquire did not extend the lease")
		}

		renewed, err := f.svc.RenewLock(as(f.teacher), f.copy.ID, first.Token)
		if err != nil {
			t.Fatal(err)
		}
		if renewed.Token != first.Token || renewed.ExpiresAt.Sub(renewed.AcquiredAt) != 300*time.Second {
			t.Fatalf("renew: token kept %v, ttl %v (want the lease's 300s)",
				renewed.Token == first.Token, renewed.ExpiresAt.Sub(renewed.AcquiredAt))
		}
		_, err = f.svc.RenewLock(as(f.teacher), f.copy.ID, "not-the-token")
		wantCode(t, err, apperr.LockRequired, "renew with a wrong token")
		_, err = f.svc.RenewLock(as(f.admin), f.copy.ID, first.Token)
		wantCode(t, err, apperr.LockRequired, "renew someone else's lease")

		if got := f.pub.lockKinds(f.copy.ID); !slices.Equal(got, []LockEventKind{LockAcquired, LockRenewed, LockRenewed}) {
			t.Fatalf("published %v", got)
		}
		if n, _ := d.Client.GradingEvent.Query().Where(gradingevent.Action(ActionLockAcquired)).Count(f.sys); n != 1 {
			t.Fatalf("%d LOCK_ACQUIRED events, want 1 (renewals are not acquisitions)", n)
		}
	})
}

func TestLockTTLBounds(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		before := f.rows()
		for _, ttl := range []int{0, 29, 3601, -5} {
			_, err := f.svc.AcquireLock(as(f.teacher), f.copy.ID, &ttl)
			wantCode(t, err, apperr.BadUserInput, "ttl")
		}
		f.assertUnchanged(before, "a refused TTL")
		for _, ttl := range []int{30, 3600} {
			l, err := f.svc.AcquireLock(as(f.teacher), f.copy.ID, &ttl)
			if err != nil {
				t.Fatalf("ttl %d: %v", ttl, err)
			}
			if _, err := f.svc.ReleaseLock(as(f.teacher), f.copy.ID, l.Token); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestReleaseAndBreak(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		token := f.acquire(f.teacher, f.copy)
		_, err := f.svc.ReleaseLock(as(f.teacher), f.copy.ID, "wrong")
		wantCode(t, err, apperr.LockRequired, "release with a wrong token")
		_, err = f.svc.ReleaseLock(as(f.teacher), f.copy.ID, "")
		wantCode(t, err, apperr.LockRequired, "release without a token")

		_, err = f.svc.BreakLock(as(f.teacher), f.copy.ID)
		wantCode(t, err, apperr.Forbidden, "a teacher breaking a lock")
		broken, err := f.svc.BreakLock(as(f.admin), f.copy.ID)
		if err != nil || !broken {
			t.Fatalf("break: %v %v", broken, err)
		}
		_, err = f.svc.SetAppreciation(as(f.teacher), f.copy.ID, token, "x")
		wantCode(t, err, apperr.LockRequired, "write after the lease was broken")
		if broken, err := f.svc.BreakLock(as(f.admin), f.copy.ID); broken || err != nil {
			t.Fatalf("break a free copy: %v %v", broken, err)
		}
		_, err = f.svc.BreakLock(as(f.admin), "cpy_00000000000000000000000000")
		wantCode(t, err, apperr.NotFound, "break on an unknown copy")

		token = f.acquire(f.teacher, f.copy)
		if ok, err := f.svc.ReleaseLock(as(f.teacher), f.copy.ID, token); !ok || err != nil {
			t.Fatalf("release: %v %v", ok, err)
		}
		if l, _ := f.svc.CurrentLock(as(f.admin), f.copy.ID); l != nil {
			t.Fatal("a released lease is still current")
		}
		want := []LockEventKind{LockAcquired, LockBroken, LockAcquired, LockReleased}
		if got := f.pub.lockKinds(f.copy.ID); !slices.Equal(got, want) {
			t.Fatalf("published %v, want %v", got, want)
		}
	})
}

func TestSweepExpiredLocks(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		live := f.newCopy("READY", f.teacher)
		f.acquire(f.teacher, f.copy)
		f.acquire(f.teacher, live)
		f.expire(f.copy)

		n, err := f.svc.SweepExpiredLocks(f.sys, time.Now())
		if err != nil || n != 1 {
			t.Fatalf("sweep: %d %v, want 1", n, err)
		}
		if left, _ := d.Client.CopyLock.Query().Where(copylock.CopyID(f.copy.ID)).Exist(f.sys); left {
			t.Fatal("the expired lease is still there")
		}
		if l, _ := f.svc.CurrentLock(as(f.teacher), live.ID); l == nil {
			t.Fatal("the sweep removed a live lease")
		}
		if got := f.pub.lockKinds(f.copy.ID); got[len(got)-1] != LockExpired {
			t.Fatalf("published %v, want EXPIRED last", got)
		}
		ev, err := d.Client.GradingEvent.Query().
			Where(gradingevent.CopyID(f.copy.ID), gradingevent.Action(ActionLockExpired)).Only(f.sys)
		if err != nil || ev.ActorID != nil {
			t.Fatalf("LOCK_EXPIRED event: %v %v", ev, err)
		}
		if n, err := f.svc.SweepExpiredLocks(f.sys, time.Now()); n != 0 || err != nil {
			t.Fatalf("second sweep: %d %v", n, err)
		}
	})
}

func TestRunSweeper(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.acquire(f.teacher, f.copy)
		f.expire(f.copy)
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			f.svc.RunSweeper(ctx, 10*time.Millisecond)
		}()
		for give := time.Now().Add(time.Minute); !slices.Contains(f.pub.lockKinds(f.copy.ID), LockExpired); {
			if time.Now().After(give) {
				t.Fatal("the sweeper never swept the expired lease")
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		<-stopped
	})
}

// Events name the holder even when the credential carries no display name.
func TestLockEventNamesTheOwner(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		nameless := viewer.NewContext(context.Background(),
			&viewer.Viewer{UserID: f.teacher.ID, Role: viewer.RoleTeacher, SessionID: "ses"})
		if _, err := f.svc.AcquireLock(nameless, f.copy.ID, nil); err != nil {
			t.Fatal(err)
		}
		if ev := f.pub.locks[0]; ev.OwnerName != f.teacher.Name || ev.OwnerID != f.teacher.ID || ev.ExamID != f.exam.ID {
			t.Fatalf("event %+v", ev)
		}
	})
}

// The upsert is a compare-and-set on its own, whatever reads come before it: it
// affects no row when someone else holds a live lease, and rows affected is
// reliable on both databases.
func TestUpsertLeaseStatement(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		now := storedTime(time.Now())
		upsert := func(owner, token string, at time.Time) int64 {
			t.Helper()
			res, err := d.SQL.Exec(f.svc.rebind(upsertLease), "lck_"+token, f.copy.ID, owner, token, at, at.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		stored := func() *ent.CopyLock {
			l, err := d.Client.CopyLock.Query().Where(copylock.CopyID(f.copy.ID)).Only(f.sys)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		if n := upsert(f.teacher.ID, "t1", now); n != 1 {
			t.Fatalf("free copy: %d rows", n)
		}
		if n := upsert(f.admin.ID, "a1", now.Add(time.Second)); n != 0 || stored().OwnerID != f.teacher.ID {
			t.Fatalf("live lease of another: %d rows, owner %s", n, stored().OwnerID)
		}
		if n := upsert(f.teacher.ID, "t2", now.Add(2*time.Second)); n != 1 || stored().Token != "t1" {
			t.Fatalf("holder renewing: %d rows, token %s", n, stored().Token)
		}
		if n := upsert(f.admin.ID, "a2", now.Add(2*time.Minute)); n != 1 || stored().Token != "a2" || stored().OwnerID != f.admin.ID {
			t.Fatalf("expired lease taken over: %d rows, %+v", n, stored())
		}
		if n := upsert(f.admin.ID, "a3", now.Add(10*time.Minute)); n != 1 || stored().Token != "a3" {
			t.Fatalf("holder re-acquiring their expired lease: %d rows, token %s (the old token must die)", n, stored().Token)
		}
	})
}
