package grading

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/copylock"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/gradingevent"
	"github.com/korrigo/korrigo/ent/job"
)

// ready is the fixture's copy fully scored under the teacher's lease.
func (f *fixture) ready() string {
	token := f.acquire(f.teacher, f.copy)
	f.scoreAll(f.teacher, f.copy, token)
	return token
}

func (f *fixture) finalizeEvents(c *ent.ExamCopy) int {
	f.t.Helper()
	n, err := f.d.Client.GradingEvent.Query().
		Where(gradingevent.CopyID(c.ID), gradingevent.Action(ActionFinalize)).Count(f.sys)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) blob() string {
	f.t.Helper()
	b, err := f.d.Client.Blob.Create().
		SetSha256(strings.Repeat("ab", 32)).SetSize(1).SetMediaType("application/pdf").Save(f.sys)
	if err != nil {
		f.t.Fatal(err)
	}
	return b.ID
}

// 20 concurrent finalizations: one job, one transition, one FINALIZE event, and
// every caller gets that job.
func TestFinalizeConcurrent(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		token := f.ready()
		const callers = 20
		jobs := make([]*ent.Job, callers)
		errs := make([]error, callers)
		began := time.Now()
		race(callers, func(i int) { jobs[i], errs[i] = f.svc.FinalizeCopy(as(f.teacher), f.copy.ID, token) })
		t.Logf("%d concurrent finalizations on %s: %v", callers, d.Dialect, time.Since(began))
		for i, err := range errs {
			if err != nil {
				t.Fatalf("caller %d: %v", i, err)
			}
			if jobs[i].ID != jobs[0].ID {
				t.Fatalf("caller %d got job %s, caller 0 got %s", i, jobs[i].ID, jobs[0].ID)
			}
		}
		all, _ := d.Client.Job.Query().Where(job.CopyID(f.copy.ID)).All(f.sys)
		if len(all) != 1 || all[0].Kind != job.KindFINALIZE_COPY || all[0].State != job.StateQUEUED ||
			all[0].RequestedByID == nil || *all[0].RequestedByID != f.teacher.ID || all[0].ExamID == nil {
			t.Fatalf("jobs: %+v", all)
		}
		if n := f.finalizeEvents(f.copy); n != 1 {
			t.Fatalf("%d FINALIZE events, want 1", n)
		}
		c := f.reload(f.copy)
		if c.Status != examcopy.StatusGRADING_IN_PROGRESS || c.FinalizeAttempts != 1 {
			t.Fatalf("copy %s, %d attempts", c.Status, c.FinalizeAttempts)
		}
		if held, _ := d.Client.CopyLock.Query().Where(copylock.CopyID(f.copy.ID)).Exist(f.sys); held {
			t.Fatal("the lease survived finalization")
		}
		if st := f.pub.statuses(f.copy.ID); len(st) != 1 || st[0].Status != examcopy.StatusGRADING_IN_PROGRESS ||
			st[0].From != examcopy.StatusREADY || st[0].CopyVersion != c.Version {
			t.Fatalf("status events %+v", st)
		}
		if kinds := f.pub.lockKinds(f.copy.ID); kinds[len(kinds)-1] != LockReleased {
			t.Fatalf("lock events %v: finalization ends the lease", kinds)
		}
		// Later, from another tab without a live token: still the same job.
		j, err := f.svc.FinalizeCopy(as(f.teacher), f.copy.ID, "")
		if err != nil || j.ID != jobs[0].ID {
			t.Fatalf("repeat: %v %v", j, err)
		}
	})
}

func TestFinalizeNeedsCompleteCopy(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		token := f.acquire(f.teacher, f.copy)
		if _, err := f.svc.SetQuestionScore(as(f.teacher), f.copy.ID, token, "q2", pts(5), nil); err != nil {
			t.Fatal(err)
		}
		before := f.rows()
		_, err := f.svc.FinalizeCopy(as(f.teacher), f.copy.ID, token)
		e := wantCode(t, err, apperr.BadUserInput, "finalize with unscored questions")
		if got := e.Extensions["missingQuestionIds"]; !slices.Equal(got.([]string), []string{"q1a", "q1b"}) {
			t.Fatalf("missingQuestionIds %v", got)
		}
		_, err = f.svc.FinalizeCopy(as(f.teacher), f.copy.ID, "stale")
		wantCode(t, err, apperr.LockRequired, "finalize without the lease")
		f.assertUnchanged(before, "a refused finalization")

		f.scoreAll(f.teacher, f.copy, token)
		if _, err := d.Client.Exam.UpdateOneID(f.exam.ID).SetRequireAppreciation(true).Save(f.sys); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.FinalizeCopy(as(f.teacher), f.copy.ID, token)
		if e := wantCode(t, err, apperr.BadUserInput, "finalize without the required appreciation"); e.Extensions["appreciationMissing"] != true {
			t.Fatalf("extensions %v", e.Extensions)
		}
		if _, err := f.svc.SetAppreciation(as(f.teacher), f.copy.ID, token, "  "); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.FinalizeCopy(as(f.teacher), f.copy.ID, token)
		wantCode(t, err, apperr.BadUserInput, "a blank appreciation")
		if _, err := f.svc.SetAppreciation(as(f.teacher), f.copy.ID, token, "Bon travail"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.FinalizeCopy(as(f.teacher), f.copy.ID, token); err != nil {
			t.Fatal(err)
		}
	})
}

// After CompleteFinalize the copy is GRADED and every write is INVALID_TRANSITION,
// whatever the token, and writes nothing.
func TestGradedIsTerminal(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		token := f.acquire(f.teacher, f.copy)
		a, err := f.svc.CreateAnnotation(as(f.teacher), f.copy.ID, token, box())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.SaveDraft(as(f.teacher), f.copy.ID, "tab", rawJSON(`{}`), nil); err != nil {
			t.Fatal(err)
		}
		f.scoreAll(f.teacher, f.copy, token)
		j, err := f.svc.FinalizeCopy(as(f.teacher), f.copy.ID, token)
		if err != nil {
			t.Fatal(err)
		}
		blob := f.blob()
		c, err := f.svc.CompleteFinalize(context.Background(), f.copy.ID, blob)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != examcopy.StatusGRADED || c.GradedAt == nil || c.FinalBlobID == nil || *c.FinalBlobID != blob {
			t.Fatalf("completed copy %+v", c)
		}
		if ex, _ := d.Client.Exam.Get(f.sys, f.exam.ID); ex.SchemeFrozenAt == nil {
			t.Fatal("the scheme did not freeze with the first graded copy")
		}
		if j, _ = d.Client.Job.Get(f.sys, j.ID); j.State != job.StateSUCCEEDED || j.ActiveKey != nil || j.FinishedAt == nil {
			t.Fatalf("job after completion %+v", j)
		}
		if st := f.pub.statuses(f.copy.ID); len(st) != 2 || st[1].Status != examcopy.StatusGRADED || st[1].ActorID != "" {
			t.Fatalf("status events %+v", st)
		}

		before := f.rows()
		for name, write := range map[string]func(ctx context.Context) error{
			"acquireLock": func(ctx context.Context) error { _, err := f.svc.AcquireLock(ctx, f.copy.ID, nil); return err },
			"renewLock":   func(ctx context.Context) error { _, err := f.svc.RenewLock(ctx, f.copy.ID, token); return err },
			"saveDraft": func(ctx context.Context) error {
				_, err := f.svc.SaveDraft(ctx, f.copy.ID, "tab", rawJSON(`{}`), nil)
				return err
			},
			"discardDraft": func(ctx context.Context) error { _, err := f.svc.DiscardDraft(ctx, f.copy.ID); return err },
			"createAnnotation": func(ctx context.Context) error {
				_, err := f.svc.CreateAnnotation(ctx, f.copy.ID, token, box())
				return err
			},
			"updateAnnotation": func(ctx context.Context) error {
				_, err := f.svc.UpdateAnnotation(ctx, a.ID, token, 1, AnnotationPatch{Text: new("late")})
				return err
			},
			"deleteAnnotation": func(ctx context.Context) error {
				_, err := f.svc.DeleteAnnotation(ctx, a.ID, token, 1)
				return err
			},
			"setQuestionScore": func(ctx context.Context) error {
				_, err := f.svc.SetQuestionScore(ctx, f.copy.ID, token, "q2", pts(1), nil)
				return err
			},
			"setAppreciation": func(ctx context.Context) error {
				_, err := f.svc.SetAppreciation(ctx, f.copy.ID, token, "late")
				return err
			},
			"finalizeCopy":  func(ctx context.Context) error { _, err := f.svc.FinalizeCopy(ctx, f.copy.ID, token); return err },
			"markCopyReady": func(ctx context.Context) error { _, err := f.svc.MarkCopyReady(ctx, f.copy.ID); return err },
		} {
			for _, u := range []*ent.User{f.teacher, f.admin} {
				if name == "markCopyReady" && u == f.teacher {
					continue
				}
				e := wantCode(t, write(as(u)), apperr.InvalidTransition, name)
				if e.Extensions["status"] != "GRADED" {
					t.Fatalf("%s: INVALID_TRANSITION does not name the status: %v", name, e.Extensions)
				}
			}
		}
		_, err = f.svc.CompleteFinalize(context.Background(), f.copy.ID, blob)
		wantCode(t, err, apperr.InvalidTransition, "complete twice")
		_, err = f.svc.FailFinalize(context.Background(), f.copy.ID, "late failure")
		wantCode(t, err, apperr.InvalidTransition, "fail a graded copy")
		f.assertUnchanged(before, "writes on a GRADED copy")
	})
}

// A failed finalization leaves the copy gradable again, and a new finalization
// gets a new job.
func TestFailFinalizeThenRetry(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		token := f.ready()
		first, err := f.svc.FinalizeCopy(as(f.teacher), f.copy.ID, token)
		if err != nil {
			t.Fatal(err)
		}
		// Until the worker reports, the copy cannot be changed.
		_, err = f.svc.AcquireLock(as(f.teacher), f.copy.ID, nil)
		wantCode(t, err, apperr.InvalidTransition, "lock a copy being finalized")

		c, err := f.svc.FailFinalize(context.Background(), f.copy.ID, "pdf: the render timed out after 60s")
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != examcopy.StatusGRADING_FAILED || c.GradingError == nil || !strings.Contains(*c.GradingError, "timed out") {
			t.Fatalf("failed copy %+v", c)
		}
		if j, _ := d.Client.Job.Get(f.sys, first.ID); j.State != job.StateFAILED || j.ActiveKey != nil || j.Error == nil {
			t.Fatalf("failed job %+v", j)
		}

		token = f.acquire(f.teacher, f.copy)
		if _, err := f.svc.SetQuestionScore(as(f.teacher), f.copy.ID, token, "q2", pts(9), nil); err != nil {
			t.Fatalf("grading a GRADING_FAILED copy: %v", err)
		}
		second, err := f.svc.FinalizeCopy(as(f.teacher), f.copy.ID, token)
		if err != nil || second.ID == first.ID {
			t.Fatalf("retry: %v %v", second, err)
		}
		if c := f.reload(f.copy); c.FinalizeAttempts != 2 || c.Status != examcopy.StatusGRADING_IN_PROGRESS {
			t.Fatalf("after retry: %s, %d attempts", c.Status, c.FinalizeAttempts)
		}
		var got []examcopy.Status
		for _, ev := range f.pub.statuses(f.copy.ID) {
			got = append(got, ev.Status)
		}
		want := []examcopy.Status{examcopy.StatusGRADING_IN_PROGRESS, examcopy.StatusGRADING_FAILED, examcopy.StatusGRADING_IN_PROGRESS}
		if !slices.Equal(got, want) {
			t.Fatalf("status events %v, want %v", got, want)
		}
	})
}

type enqueuerFunc func(ctx context.Context, tx *ent.Tx, j *ent.Job) error

func (e enqueuerFunc) EnqueueFinalize(ctx context.Context, tx *ent.Tx, j *ent.Job) error {
	return e(ctx, tx, j)
}

// The job runner hook runs inside the finalization's transaction: when it fails,
// nothing of the finalization remains.
func TestFinalizeEnqueuer(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		token := f.ready()
		var handed []string
		f.svc = NewService(d, nil, f.pub, WithJobEnqueuer(enqueuerFunc(func(ctx context.Context, tx *ent.Tx, j *ent.Job) error {
			handed = append(handed, j.ID)
			if len(handed) == 1 {
				return context.DeadlineExceeded
			}
			return nil
		})))
		before := f.rows()
		_, err := f.svc.FinalizeCopy(as(f.teacher), f.copy.ID, token)
		if err == nil || apperr.CodeOf(err) != apperr.InternalError {
			t.Fatalf("a failing enqueuer: %v", err)
		}
		f.assertUnchanged(before, "a finalization whose enqueue failed")
		j, err := f.svc.FinalizeCopy(as(f.teacher), f.copy.ID, token)
		if err != nil || len(handed) != 2 || handed[1] != j.ID {
			t.Fatalf("enqueue: %v %v %v", j, handed, err)
		}
	})
}

func TestMarkCopyReady(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		staging := f.newCopy(examcopy.StatusSTAGING, f.teacher)
		_, err := f.svc.AcquireLock(as(f.teacher), staging.ID, nil)
		wantCode(t, err, apperr.InvalidTransition, "lock a STAGING copy")
		_, err = f.svc.MarkCopyReady(as(f.teacher), staging.ID)
		wantCode(t, err, apperr.Forbidden, "a teacher marking ready")

		c, err := f.svc.MarkCopyReady(as(f.admin), staging.ID)
		if err != nil || c.Status != examcopy.StatusREADY || c.Version != staging.Version+1 {
			t.Fatalf("mark ready: %+v %v", c, err)
		}
		ev, err := d.Client.GradingEvent.Query().Where(gradingevent.CopyID(staging.ID)).Only(f.sys)
		if err != nil || ev.Action != ActionMarkReady || ev.ActorID == nil || *ev.ActorID != f.admin.ID {
			t.Fatalf("event %+v %v", ev, err)
		}
		before := f.rows()
		_, err = f.svc.MarkCopyReady(as(f.admin), staging.ID)
		if e := wantCode(t, err, apperr.InvalidTransition, "mark ready twice"); e.Extensions["status"] != "READY" {
			t.Fatalf("extensions %v", e.Extensions)
		}
		_, err = f.svc.MarkCopyReady(as(f.admin), "cpy_00000000000000000000000000")
		wantCode(t, err, apperr.NotFound, "unknown copy")
		f.assertUnchanged(before, "refused transitions")
		if st := f.pub.statuses(staging.ID); len(st) != 1 || st[0].ActorID != f.admin.ID {
			t.Fatalf("status events %+v", st)
		}
	})
}

// The holder's tabs keep re-acquiring the lease while the copy is finalized: a
// re-acquisition is either before the finalization (and ended by it) or refused,
// so no lease ever survives on a copy being finalized. On PostgreSQL this holds
// only because both transactions lock the copy row first: otherwise a renewal
// that read READY lands its upsert just after the finalization deleted the lease.
func TestFinalizeRacesLockRenewal(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		const rounds, tabs = 20, 6
		for round := range rounds {
			c := f.newCopy(examcopy.StatusREADY, f.teacher)
			token := f.acquire(f.teacher, c)
			for _, l := range testScheme().Leaves() {
				err := d.Client.QuestionScore.Create().SetCopyID(c.ID).SetQuestionID(l.ID).SetPoints(1).Exec(f.sys)
				if err != nil {
					t.Fatal(err)
				}
			}
			errs := make([]error, tabs)
			race(tabs, func(i int) {
				if i == 0 {
					_, errs[i] = f.svc.FinalizeCopy(as(f.teacher), c.ID, token)
					return
				}
				for range 5 {
					if _, errs[i] = f.svc.AcquireLock(as(f.teacher), c.ID, nil); errs[i] != nil {
						return
					}
				}
			})
			if errs[0] != nil {
				t.Fatalf("round %d: finalize: %v", round, errs[0])
			}
			for _, err := range errs[1:] {
				if err != nil && !apperr.HasCode(err, apperr.InvalidTransition) {
					t.Fatalf("round %d: re-acquire: %v", round, err)
				}
			}
			if held, _ := d.Client.CopyLock.Query().Where(copylock.CopyID(c.ID)).Exist(f.sys); held {
				t.Fatalf("round %d: a lease survived on a copy being finalized", round)
			}
		}
	})
}
