package grading

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/copylock"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/grading/scheme"
)

// fixture is one exam with a marking scheme (q1a /4, q1b /6, q2 /10), an admin, the
// copy's corrector, another teacher of the exam, a student, and a READY copy of 4
// pages assigned to the corrector.
type fixture struct {
	t       testing.TB
	d       *db.DB
	svc     *Service
	pub     *recorder
	sys     context.Context
	admin   *ent.User
	teacher *ent.User // the copy's assigned corrector
	other   *ent.User // a corrector of the exam, not of this copy
	student *ent.User
	exam    *ent.Exam
	copy    *ent.ExamCopy
	seq     atomic.Int64
}

func pts(p float64) *float64 { return &p }

func testScheme() scheme.Scheme {
	return scheme.Scheme{
		{ID: "q1", Label: "Exercice 1", Children: []scheme.Node{
			{ID: "q1a", Label: "a", Points: pts(4)},
			{ID: "q1b", Label: "b", Points: pts(6)},
		}},
		{ID: "q2", Label: "Exercice 2", Points: pts(10)},
	}
}

func newFixture(t testing.TB, d *db.DB) *fixture {
	t.Helper()
	f := &fixture{t: t, d: d, pub: &recorder{}, sys: rules.System(context.Background())}
	f.svc = NewService(d, nil, f.pub)
	f.admin = f.user(user.RoleADMIN, "Alice Admin")
	f.teacher = f.user(user.RoleTEACHER, "Théo Corrector")
	f.other = f.user(user.RoleTEACHER, "Olga Other")
	f.student = f.user(user.RoleSTUDENT, "Sam Student")
	var err error
	f.exam, err = d.Client.Exam.Create().
		SetName("Bac blanc").
		SetDate("2026-11-20").
		SetPagesPerBooklet(4).
		SetScheme(testScheme()).
		AddCorrectors(f.teacher, f.other).
		Save(f.sys)
	if err != nil {
		t.Fatal(err)
	}
	f.copy = f.newCopy(examcopy.StatusREADY, f.teacher)
	return f
}

func (f *fixture) user(role user.Role, name string) *ent.User {
	f.t.Helper()
	u, err := f.d.Client.User.Create().
		SetEmail(fmt.Sprintf("u%d@example.org", f.seq.Add(1))).
		SetName(name).
		SetRole(role).
		SetPasswordHash("x").
		Save(f.sys)
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *fixture) newCopy(status examcopy.Status, assignee *ent.User) *ent.ExamCopy {
	f.t.Helper()
	q := f.d.Client.ExamCopy.Create().
		SetExamID(f.exam.ID).
		SetAnonymousID(fmt.Sprintf("ab12-%03d", f.seq.Add(1))).
		SetStatus(status).
		SetPageCount(4)
	if assignee != nil {
		q.SetAssignedCorrectorID(assignee.ID)
	}
	c, err := q.Save(f.sys)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// as is a request context of u (a session: may write).
func as(u *ent.User) context.Context {
	return viewer.NewContext(context.Background(),
		&viewer.Viewer{UserID: u.ID, Name: u.Name, Role: viewer.Role(u.Role), SessionID: "ses"})
}

// readOnly is u through an API token without the write scope.
func readOnly(u *ent.User) context.Context {
	return viewer.NewContext(context.Background(),
		&viewer.Viewer{UserID: u.ID, Name: u.Name, Role: viewer.Role(u.Role), TokenID: "tok", Scopes: []string{viewer.ScopeRead}})
}

// acquire takes the copy's lease as u and returns its token.
func (f *fixture) acquire(u *ent.User, c *ent.ExamCopy) string {
	f.t.Helper()
	l, err := f.svc.AcquireLock(as(u), c.ID, nil)
	if err != nil {
		f.t.Fatalf("acquire %s as %s: %v", c.ID, u.Name, err)
	}
	return l.Token
}

// expire moves the copy's lease into the past (instead of sleeping).
func (f *fixture) expire(c *ent.ExamCopy) {
	f.t.Helper()
	past := time.Now().UTC().Add(-time.Minute)
	n, err := f.d.Client.CopyLock.Update().Where(copylock.CopyID(c.ID)).
		SetAcquiredAt(past.Add(-5 * time.Minute)).SetExpiresAt(past).Save(f.sys)
	if err != nil || n != 1 {
		f.t.Fatalf("expire lease of %s: n=%d err=%v", c.ID, n, err)
	}
}

// scoreAll scores every leaf of the copy (full marks) under token.
func (f *fixture) scoreAll(u *ent.User, c *ent.ExamCopy, token string) {
	f.t.Helper()
	for _, l := range testScheme().Leaves() {
		if _, err := f.svc.SetQuestionScore(as(u), c.ID, token, l.ID, pts(l.Points), nil); err != nil {
			f.t.Fatalf("score %s: %v", l.ID, err)
		}
	}
}

func (f *fixture) reload(c *ent.ExamCopy) *ent.ExamCopy {
	f.t.Helper()
	c, err := f.d.Client.ExamCopy.Get(f.sys, c.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// rows counts what grading writes, to prove a refused call wrote nothing.
func (f *fixture) rows() map[string]int {
	f.t.Helper()
	out := map[string]int{}
	for _, q := range []string{
		"annotations", "annotation_revisions", "question_scores", "drafts", "copy_locks", "grading_events", "jobs",
	} {
		out[q] = f.scalar("SELECT COUNT(*) FROM " + q)
	}
	out["copies.version"] = f.scalar("SELECT COALESCE(SUM(version), 0) FROM copies")
	out["annotations.version"] = f.scalar("SELECT COALESCE(SUM(version), 0) FROM annotations")
	out["drafts.version"] = f.scalar("SELECT COALESCE(SUM(version), 0) FROM drafts")
	out["copy_locks.expiry"] = f.scalar("SELECT COUNT(DISTINCT expires_at) FROM copy_locks")
	return out
}

func (f *fixture) scalar(query string) int {
	f.t.Helper()
	var n int
	if err := f.d.SQL.QueryRow(query).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (f *fixture) assertUnchanged(before map[string]int, what string) {
	f.t.Helper()
	after := f.rows()
	for k, v := range before {
		if after[k] != v {
			f.t.Errorf("%s wrote to the database: %s %d → %d", what, k, v, after[k])
		}
	}
}

// wantCode fails unless err is the typed error code.
func wantCode(t *testing.T, err error, code apperr.Code, what string) *apperr.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %s", what, code)
	}
	if got := apperr.CodeOf(err); got != code {
		t.Fatalf("%s: got %s (%v), want %s", what, got, err, code)
	}
	typed, _ := err.(*apperr.Error)
	if typed == nil {
		t.Fatalf("%s: %s error is wrapped: %v", what, code, err)
	}
	return typed
}

func lockOwner(t *testing.T, e *apperr.Error) apperr.LockOwner {
	t.Helper()
	lock, ok := e.Extensions["lock"].(map[string]any)
	if !ok {
		t.Fatalf("LOCKED without extensions.lock: %#v", e.Extensions)
	}
	owner, ok := lock["owner"].(apperr.LockOwner)
	if !ok || lock["expiresAt"] == "" {
		t.Fatalf("LOCKED without owner or expiry: %#v", lock)
	}
	return owner
}

// recorder is a Publisher that keeps what it was given.
type recorder struct {
	mu     sync.Mutex
	locks  []LockEvent
	status []StatusEvent
}

func (r *recorder) CopyLockChanged(_ context.Context, ev LockEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.locks = append(r.locks, ev)
}

func (r *recorder) CopyStatusChanged(_ context.Context, ev StatusEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = append(r.status, ev)
}

func (r *recorder) lockKinds(copyID string) []LockEventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []LockEventKind
	for _, ev := range r.locks {
		if ev.CopyID == copyID {
			out = append(out, ev.Kind)
		}
	}
	return out
}

func (r *recorder) statuses(copyID string) []StatusEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []StatusEvent
	for _, ev := range r.status {
		if ev.CopyID == copyID {
			out = append(out, ev)
		}
	}
	return out
}

// race runs fn(i) in n goroutines released at once and waits for all.
func race(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

func rawJSON(s string) json.RawMessage { return json.RawMessage(s) }

func nan() float64 { return math.NaN() }
func inf() float64 { return math.Inf(1) }
