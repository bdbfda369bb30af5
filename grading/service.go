// Package grading is the domain core of Korrigo (DESIGN.md §5–§8): grading leases,
// autosaved drafts, versioned annotations, scores, the copy state machine and the
// request side of finalization.
//
// Every exported method is one short transaction owned by the service, and every
// rule that must hold under concurrency is decided by the database inside that
// transaction, never by a read made before it:
//
//   - The copy row is the serialization point of every write on a copy. The first
//     statement of a write transaction locks it (SELECT … FOR NO KEY UPDATE on
//     PostgreSQL; on SQLite, BEGIN IMMEDIATE already serializes writers), so the
//     status and assignee checked next cannot change before commit. Every
//     transaction locks the copy before the rows that hang off it (lease, drafts,
//     annotations, scores, jobs), so they cannot deadlock each other. The lease
//     sweeper is the one exception: it only deletes leases that have expired,
//     which no one else may still use.
//   - Leases, drafts, annotation versions and status transitions are
//     compare-and-set statements; rows affected decide who won.
//   - Realtime events are published only after commit.
//
// Reads for the API go through the ent privacy rules with the caller's context;
// the service reads with rules.System only after it made its own decision.
//
// The service opens its own transactions: do not call it inside another
// transaction (on SQLite that one would hold the write lock it waits for).
package grading

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
)

// Publisher receives realtime events. It is called after the transaction that
// made the change committed, never from inside it, and must not block.
type Publisher interface {
	CopyLockChanged(ctx context.Context, ev LockEvent)
	CopyStatusChanged(ctx context.Context, ev StatusEvent)
}

// JobEnqueuer hands a freshly recorded job to the job runner inside the
// transaction that recorded it (River's InsertTx), so the status change, the Job
// row and the runner's own job commit or roll back together.
type JobEnqueuer interface {
	EnqueueFinalize(ctx context.Context, tx *ent.Tx, job *ent.Job) error
}

// Service implements the grading rules. It is safe for concurrent use.
type Service struct {
	db     *db.DB
	log    *zap.Logger
	pub    Publisher
	jobs   JobEnqueuer
	now    func() time.Time
	writer chan struct{} // SQLite only: see inTx
}

// Option configures a Service.
type Option func(*Service)

// WithJobEnqueuer sets the job runner that receives FINALIZE_COPY jobs. Without
// one, a finalization job is recorded and stays QUEUED until a runner picks it up.
func WithJobEnqueuer(e JobEnqueuer) Option { return func(s *Service) { s.jobs = e } }

// NewService returns a Service on d. A nil logger discards logs; a nil pub
// publishes nothing.
func NewService(d *db.DB, logger *zap.Logger, pub Publisher, opts ...Option) *Service {
	if logger == nil {
		logger = zap.NewNop()
	}
	if pub == nil {
		pub = nopPublisher{}
	}
	s := &Service{db: d, log: logger, pub: pub, now: time.Now}
	if d.Dialect == dialect.SQLite {
		s.writer = make(chan struct{}, 1)
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

type nopPublisher struct{}

func (nopPublisher) CopyLockChanged(context.Context, LockEvent)     {}
func (nopPublisher) CopyStatusChanged(context.Context, StatusEvent) {}

// clock is the current time as stored: UTC (SQLite compares times as text, which
// is only correct for one offset), without a monotonic reading (the SQLite driver
// would write it out) and at PostgreSQL's microsecond precision, so both databases
// hold and return the same instants.
func (s *Service) clock() time.Time { return storedTime(s.now()) }

func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// system is the context for the service's own reads and writes, made after the
// service decided the caller may do what they asked.
func system(ctx context.Context) context.Context { return rules.System(ctx) }

// inTx runs fn in one transaction.
//
// SQLite has one writer at a time, and a transaction that finds the database
// busy sleeps and retries (1, 2, 5 … 100 ms): under contention most of the wall
// time would be spent asleep with the database idle. On SQLite (one process by
// design) this service's transactions therefore queue here instead, and the next
// one starts as soon as the previous commits. Writers elsewhere in the process
// still meet SQLite's busy handler, which stays the correctness backstop.
func (s *Service) inTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	if s.writer != nil {
		select {
		case s.writer <- struct{}{}:
			defer func() { <-s.writer }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return db.WithTx(ctx, s.db.Client, fn)
}

// afterCommit is the context handed to the publisher: the request may end right
// after the commit, the event must still go out.
func afterCommit(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// caller returns the authenticated viewer.
func caller(ctx context.Context) (*viewer.Viewer, error) {
	v := viewer.FromContext(ctx)
	if v == nil {
		return nil, apperr.Unauthenticatedf("sign in first")
	}
	return v, nil
}

// grader returns the viewer when they may change grading data at all: admins and
// teachers, with a credential that allows writes. Whether they may grade a given
// copy is decided by lockCopy.
func grader(ctx context.Context) (*viewer.Viewer, error) {
	v, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case !v.CanWrite():
		return nil, apperr.Forbiddenf("this API token is read-only")
	case !v.IsAdmin() && !v.IsTeacher():
		return nil, apperr.Forbiddenf("only correctors and admins grade copies")
	}
	return v, nil
}

// admin returns the viewer when they are an admin with a write credential.
func admin(ctx context.Context) (*viewer.Viewer, error) {
	v, err := grader(ctx)
	if err != nil {
		return nil, err
	}
	if !v.IsAdmin() {
		return nil, apperr.Forbiddenf("admins only")
	}
	return v, nil
}

// lockCopy reads the copy v wants to change and locks its row until tx ends; see
// the package comment. v may change the copies the read rules let them see (an
// admin: all; a teacher: the copies assigned to them in exams that are not
// deleted). A copy that exists but is not theirs is FORBIDDEN rather than
// NOT_FOUND: the id came from somewhere, and a uniform answer is more useful to a
// corrector whose copy was just reassigned than a pretence that it vanished.
func (s *Service) lockCopy(ctx context.Context, tx *ent.Tx, v *viewer.Viewer, copyID string) (*ent.ExamCopy, error) {
	q := tx.ExamCopy.Query().Where(examcopy.ID(copyID), rules.VisibleCopies(v))
	if s.db.Dialect == dialect.Postgres {
		// NO KEY UPDATE, not UPDATE: inserts of rows referencing the copy (their
		// foreign-key check takes KEY SHARE) need not wait for us.
		q.Modify(func(sel *sql.Selector) { sel.For(sql.LockNoKeyUpdate) })
	}
	c, err := q.Only(system(ctx))
	if err == nil {
		return c, nil
	}
	if !ent.IsNotFound(err) {
		return nil, fmt.Errorf("read copy %s: %w", copyID, err)
	}
	exists, err := tx.ExamCopy.Query().Where(examcopy.ID(copyID)).Exist(system(ctx))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read copy %s: %w", copyID, err)
	case exists:
		return nil, apperr.Forbiddenf("copy %s is not assigned to you", copyID)
	}
	return nil, apperr.NotFoundf("copy %s not found", copyID)
}

// gradable refuses grading changes to a copy that is not being graded: STAGING
// copies are not ready, GRADING_IN_PROGRESS ones are being rendered, GRADED is
// terminal.
func gradable(c *ent.ExamCopy) error {
	switch c.Status {
	case examcopy.StatusREADY, examcopy.StatusGRADING_FAILED:
		return nil
	}
	return invalidStatus(c, "it can only be graded while READY or GRADING_FAILED")
}

func invalidStatus(c *ent.ExamCopy, why string) *apperr.Error {
	return apperr.InvalidTransitionf("copy %s is %s: %s", c.ID, c.Status, why).With("status", string(c.Status))
}

// fail passes typed errors through and wraps anything else with what was being
// done, for the logs (the API shows internal errors as INTERNAL_SERVER_ERROR).
func fail(err error, format string, args ...any) error {
	var typed *apperr.Error
	if errors.As(err, &typed) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// rebind turns the ? placeholders of a raw statement into PostgreSQL's $n. The
// raw statements of this package hold no literal question marks.
func (s *Service) rebind(query string) string {
	if s.db.Dialect != dialect.Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// nameOf is the caller's display name for events: the viewer's, or the stored
// one when the credential did not carry it.
func nameOf(ctx context.Context, tx *ent.Tx, v *viewer.Viewer) (string, error) {
	if v.Name != "" {
		return v.Name, nil
	}
	u, err := tx.User.Get(system(ctx), v.UserID)
	if err != nil {
		return "", fmt.Errorf("read user %s: %w", v.UserID, err)
	}
	return u.Name, nil
}

// actorID is the user behind ctx, nil for the server's own actions (job worker,
// sweeper).
func actorID(ctx context.Context) *string {
	if v := viewer.FromContext(ctx); v != nil {
		return &v.UserID
	}
	return nil
}

// event appends one entry to the copy's audit trail.
func (s *Service) event(ctx context.Context, tx *ent.Tx, copyID, action string, meta map[string]any, at time.Time) error {
	err := tx.GradingEvent.Create().
		SetCopyID(copyID).
		SetNillableActorID(actorID(ctx)).
		SetAction(action).
		SetMetadata(meta).
		SetAt(at).
		Exec(system(ctx))
	if err != nil {
		return fmt.Errorf("record %s event on %s: %w", action, copyID, err)
	}
	return nil
}

// copyForGrading locks the copy for a grading write by v (annotation, score,
// appreciation): theirs to grade, in a gradable status, and under their live
// lease. The order of the checks is the order of the answers: NOT_FOUND,
// FORBIDDEN, INVALID_TRANSITION, LOCK_REQUIRED.
func (s *Service) copyForGrading(ctx context.Context, tx *ent.Tx, v *viewer.Viewer, copyID, lockToken string) (*ent.ExamCopy, error) {
	c, err := s.lockCopy(ctx, tx, v, copyID)
	if err != nil {
		return nil, err
	}
	if err := gradable(c); err != nil {
		return nil, err
	}
	if err := s.requireLease(ctx, tx, c, v, lockToken); err != nil {
		return nil, err
	}
	return c, nil
}

// Copy reads a copy as the caller may see it: NOT_FOUND when it does not exist or
// the read rules hide it.
func (s *Service) Copy(ctx context.Context, id string) (*ent.ExamCopy, error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	c, err := s.db.Client.ExamCopy.Get(ctx, id)
	switch {
	case ent.IsNotFound(err):
		return nil, apperr.NotFoundf("copy %s not found", id)
	case err != nil:
		return nil, fmt.Errorf("read copy %s: %w", id, err)
	}
	return c, nil
}
