package realtime_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/grading"
	"github.com/korrigo/korrigo/pubsub"
	"github.com/korrigo/korrigo/realtime"
)

const wait = 20 * time.Second

// recorder keeps what grading published instead of sending it, so a test can
// deliver an event late, as if it had raced the snapshot.
type recorder struct {
	mu     sync.Mutex
	locks  []grading.LockEvent
	status []grading.StatusEvent
}

func (r *recorder) CopyLockChanged(_ context.Context, ev grading.LockEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.locks = append(r.locks, ev)
}

func (r *recorder) CopyStatusChanged(_ context.Context, ev grading.StatusEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = append(r.status, ev)
}

type fixture struct {
	d       *db.DB
	broker  *pubsub.Memory
	pub     *realtime.Publisher
	rt      *realtime.Service
	rec     *recorder
	late    *grading.Service // publishes into rec
	live    *grading.Service // publishes to the broker
	teacher *ent.User
	admin   *ent.User
	exam    *ent.Exam
	copy    *ent.ExamCopy
}

func newFixture(t *testing.T, d *db.DB) *fixture {
	t.Helper()
	ctx := rules.System(context.Background())
	f := &fixture{d: d, broker: pubsub.NewMemory(), rec: &recorder{}}
	t.Cleanup(func() { _ = f.broker.Close() })
	f.pub = realtime.NewPublisher(f.broker, nil)
	f.rt = realtime.NewService(d.Client, f.broker, nil, realtime.WithJobPoll(50*time.Millisecond))
	f.late = grading.NewService(d, nil, f.rec)
	f.live = grading.NewService(d, nil, f.pub)
	var err error
	mk := func(role user.Role, name string) *ent.User {
		u, err := d.Client.User.Create().SetEmail(fmt.Sprintf("%s@school.example", name)).SetName(name).
			SetRole(role).SetPasswordHash("x").Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	f.teacher, f.admin = mk(user.RoleTEACHER, "marie"), mk(user.RoleADMIN, "office")
	if f.exam, err = d.Client.Exam.Create().SetName("Bac blanc").SetDate("2026-11-20").SetPagesPerBooklet(4).
		AddCorrectors(f.teacher).Save(ctx); err != nil {
		t.Fatal(err)
	}
	if f.copy, err = d.Client.ExamCopy.Create().SetExamID(f.exam.ID).SetAnonymousID("abcd-001").
		SetStatus(examcopy.StatusSTAGING).SetPageCount(4).SetAssignedCorrectorID(f.teacher.ID).Save(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

func as(u *ent.User) context.Context {
	return viewer.NewContext(context.Background(), &viewer.Viewer{UserID: u.ID, Name: u.Name, Role: viewer.Role(u.Role)})
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatal("subscription ended")
		}
		return v
	case <-time.After(wait):
		t.Fatal("no event")
	}
	var zero T
	return zero
}

// A lock change that committed before the snapshot but is delivered after it
// is dropped; the next change is delivered.
func TestLockEventRacingTheSnapshotIsDropped(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx, cancel := context.WithCancel(as(f.teacher))
		defer cancel()
		if _, err := f.live.MarkCopyReady(as(f.admin), f.copy.ID); err != nil {
			t.Fatal(err)
		}
		lease, err := f.late.AcquireLock(as(f.teacher), f.copy.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := f.rt.CopyLockChanged(ctx, f.exam.ID)
		if err != nil {
			t.Fatal(err)
		}
		snap := recv(t, ch)
		if snap.Kind != realtime.LockSnapshot || len(snap.Locks) != 1 || snap.Locks[0].CopyID != f.copy.ID {
			t.Fatalf("want a snapshot with the lease, got %+v", snap)
		}
		// The ACQUIRED notification arrives now, late: already in the snapshot.
		f.pub.CopyLockChanged(context.Background(), f.rec.locks[0])
		if _, err := f.live.ReleaseLock(as(f.teacher), f.copy.ID, lease.Token); err != nil {
			t.Fatal(err)
		}
		if ev := recv(t, ch); ev.Kind != realtime.LockReleased || *ev.CopyID != f.copy.ID {
			t.Fatalf("want RELEASED right after the snapshot (the late ACQUIRED dropped), got %+v", ev)
		}

		// The same for a lease that ended before the snapshot: its late
		// ACQUIRED and RELEASED are both dropped.
		lease, err = f.late.AcquireLock(as(f.teacher), f.copy.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.late.ReleaseLock(as(f.teacher), f.copy.ID, lease.Token); err != nil {
			t.Fatal(err)
		}
		ch2, err := f.rt.CopyLockChanged(ctx, f.exam.ID)
		if err != nil {
			t.Fatal(err)
		}
		if snap := recv(t, ch2); len(snap.Locks) != 0 {
			t.Fatalf("want an empty snapshot, got %+v", snap)
		}
		for _, ev := range f.rec.locks[1:] {
			f.pub.CopyLockChanged(context.Background(), ev)
		}
		if _, err := f.live.AcquireLock(as(f.teacher), f.copy.ID, nil); err != nil {
			t.Fatal(err)
		}
		if ev := recv(t, ch2); ev.Kind != realtime.LockAcquired || ev.ExpiresAt == nil {
			t.Fatalf("want the new ACQUIRED only, got %+v", ev)
		}
	})
}

// A status change whose version the snapshot already shows is dropped.
func TestStatusEventRacingTheSnapshotIsDropped(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx, cancel := context.WithCancel(as(f.teacher))
		defer cancel()
		if _, err := f.late.MarkCopyReady(as(f.admin), f.copy.ID); err != nil {
			t.Fatal(err)
		}
		ch, err := f.rt.CopyStatusChanged(ctx, f.exam.ID)
		if err != nil {
			t.Fatal(err)
		}
		snap := recv(t, ch)
		if len(snap.Copies) != 1 || snap.Copies[0].Status != examcopy.StatusREADY {
			t.Fatalf("want the READY copy, got %+v", snap)
		}
		f.pub.CopyStatusChanged(context.Background(), f.rec.status[0]) // late STAGING→READY
		newer := f.rec.status[0]
		newer.From, newer.Status, newer.CopyVersion = examcopy.StatusREADY, examcopy.StatusGRADING_IN_PROGRESS, newer.CopyVersion+1
		f.pub.CopyStatusChanged(context.Background(), newer)
		if ev := recv(t, ch); ev.Kind != realtime.StatusChanged || *ev.Version != newer.CopyVersion {
			t.Fatalf("want only the newer version, got %+v", ev)
		}
	})
}

// A teacher hears a copy's status change if the copy was theirs when the
// change committed (or it was just taken from them), not if it is theirs when
// the event is delivered: a reassignment committing in between must not hand
// the new corrector the copy's earlier events.
func TestStatusEventVisibilityIsDecidedAtCommit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		sys := rules.System(context.Background())
		paul, err := d.Client.User.Create().SetEmail("paul@school.example").SetName("paul").
			SetRole(user.RoleTEACHER).SetPasswordHash("x").Save(sys)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Client.Exam.UpdateOneID(f.exam.ID).AddCorrectors(paul).Exec(sys); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		subscribe := func(u *ent.User, want int) <-chan *realtime.CopyStatusEvent {
			ch, err := f.rt.CopyStatusChanged(viewer.NewContext(ctx, viewer.FromContext(as(u))), f.exam.ID)
			if err != nil {
				t.Fatal(err)
			}
			if snap := recv(t, ch); snap.Kind != realtime.StatusSnapshot || len(snap.Copies) != want {
				t.Fatalf("%s: want a snapshot of %d copies, got %+v", u.Name, want, snap)
			}
			return ch
		}
		marieCh, paulCh := subscribe(f.teacher, 1), subscribe(paul, 0)

		// STAGING→READY commits while the copy is Marie's; its event is held back.
		if _, err := f.late.MarkCopyReady(as(f.admin), f.copy.ID); err != nil {
			t.Fatal(err)
		}
		ready := f.rec.status[0]
		// The copy moves to Paul before that event is delivered.
		if err := d.Client.ExamCopy.UpdateOneID(f.copy.ID).SetAssignedCorrectorID(paul.ID).AddVersion(1).Exec(sys); err != nil {
			t.Fatal(err)
		}
		f.pub.CopyStatusChanged(context.Background(), ready)
		moved := grading.StatusEvent{ExamID: f.exam.ID, CopyID: f.copy.ID, From: examcopy.StatusREADY,
			Status: examcopy.StatusREADY, CopyVersion: ready.CopyVersion + 1, At: ready.At,
			CorrectorID: paul.ID, PreviousCorrectorID: f.teacher.ID, AssigneeID: paul.ID}
		f.pub.CopyStatusChanged(context.Background(), moved)

		if ev := recv(t, paulCh); ev.Kind != realtime.StatusAssigned || *ev.Version != moved.CopyVersion {
			t.Fatalf("paul: want the reassignment first (READY was Marie's copy's change), got %+v", ev)
		}
		if ev := recv(t, marieCh); ev.Kind != realtime.StatusChanged || *ev.Version != ready.CopyVersion {
			t.Fatalf("marie: want her copy's READY, got %+v", ev)
		}
		if ev := recv(t, marieCh); ev.Kind != realtime.StatusAssigned || *ev.PreviousCorrectorID != f.teacher.ID {
			t.Fatalf("marie: want to be told the copy left her, got %+v", ev)
		}
	})
}

// A subscriber that falls behind loses notifications, not the publisher's
// time: it gets a fresh SNAPSHOT instead, showing the current state.
func TestLaggingSubscriberGetsAFreshSnapshot(t *testing.T) {
	d := dbtest.Open(t, "sqlite3")
	f := newFixture(t, d)
	ctx, cancel := context.WithCancel(as(f.teacher))
	defer cancel()
	ch, err := f.rt.CopyLockChanged(ctx, f.exam.ID)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, ch)
	start := time.Now()
	at := time.Now()
	for i := range 500 { // nobody reads: the subscriber falls behind
		at = at.Add(time.Millisecond)
		f.pub.CopyLockChanged(context.Background(), grading.LockEvent{ExamID: f.exam.ID, CopyID: fmt.Sprintf("cpy_%d", i),
			Kind: grading.LockAcquired, OwnerID: f.teacher.ID, OwnerName: f.teacher.Name, ExpiresAt: at.Add(time.Minute), At: at})
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("publishing to a stuck subscriber took %s", d)
	}
	snapshots := 0
	for n := 0; ; n++ {
		ev := recv(t, ch)
		if ev.Kind == realtime.LockSnapshot {
			snapshots++
			break
		}
		if n > 500 {
			t.Fatal("no fresh snapshot after the loss")
		}
	}
	if snapshots != 1 {
		t.Fatal("want a fresh snapshot")
	}
}

// jobProgress ends after a terminal state even without notifications (poll).
func TestJobProgressPollsAndCompletes(t *testing.T) {
	d := dbtest.Open(t, "sqlite3")
	f := newFixture(t, d)
	ctx, cancel := context.WithCancel(as(f.teacher))
	defer cancel()
	j, err := d.Client.Job.Create().SetKind("EXPORT_GRADES").SetRequestedByID(f.teacher.ID).
		Save(rules.System(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := f.rt.JobProgress(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ch); got.State != "QUEUED" {
		t.Fatalf("want QUEUED, got %s", got.State)
	}
	if _, err := j.Update().SetState("SUCCEEDED").SetUpdatedAt(time.Now().Add(time.Second)).
		Save(rules.System(context.Background())); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ch); got.State != "SUCCEEDED" {
		t.Fatalf("want SUCCEEDED, got %s", got.State)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("want the stream closed after a terminal state")
		}
	case <-time.After(wait):
		t.Fatal("stream not closed")
	}
}

// copyLockChanged parks no goroutine per subscription (the broker calls it
// back), still delivers to every subscriber, and ends when the broker closes.
func TestLockStreamsHoldNoGoroutine(t *testing.T) {
	d := dbtest.Open(t, "sqlite3")
	f := newFixture(t, d)
	ctx, cancel := context.WithCancel(as(f.teacher))
	defer cancel()
	const n = 50
	base := runtime.NumGoroutine()
	chans := make([]<-chan *realtime.CopyLockEvent, n)
	for i := range chans {
		ch, err := f.rt.CopyLockChanged(ctx, f.exam.ID)
		if err != nil {
			t.Fatal(err)
		}
		recv(t, ch) // snapshot
		chans[i] = ch
	}
	if grown := runtime.NumGoroutine() - base; grown >= n {
		t.Fatalf("%d subscriptions added %d goroutines", n, grown)
	}
	now := time.Now()
	f.pub.CopyLockChanged(context.Background(), grading.LockEvent{ExamID: f.exam.ID, CopyID: f.copy.ID,
		Kind: grading.LockAcquired, OwnerID: f.teacher.ID, OwnerName: f.teacher.Name, ExpiresAt: now.Add(time.Minute), At: now})
	var first *realtime.CopyLockEvent
	for _, ch := range chans {
		ev := recv(t, ch)
		if ev.Kind != realtime.LockAcquired || *ev.CopyID != f.copy.ID {
			t.Fatalf("got %+v", ev)
		}
		if first == nil {
			first = ev
		} else if ev != first {
			t.Fatal("the event was built once per subscriber")
		}
	}
	_ = f.broker.Close()
	for _, ch := range chans {
		select {
		case _, ok := <-ch:
			if ok {
				t.Fatal("event after the broker closed")
			}
		case <-time.After(wait):
			t.Fatal("stream not ended by the broker closing")
		}
	}
}
