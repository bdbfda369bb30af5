// Package office is the exam office's service around grading and the student
// portal (issue 6): importing students, identifying copies, dispatching them to
// correctors, releasing results, progress and statistics, and what a student
// sees of their own results.
//
// Like package grading, every write is one short transaction owned by the
// service, with the authorization decided here before any read on the
// server's own behalf (rules.System); every rule that must hold under
// concurrency is a compare-and-set UPDATE decided by the database.
package office

import (
	"context"
	"errors"
	"fmt"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/exam"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/grading"
)

// Auditor writes security events (auth.Service implements it).
type Auditor interface {
	AuditTx(ctx context.Context, tx *ent.Tx, action, target string, meta map[string]any) error
}

// Audit-trail actions: GradingEvent.action for copies, AuditLog.action for the rest.
const (
	ActionIdentify        = "IDENTIFY"
	ActionUnidentify      = "UNIDENTIFY"
	ActionDispatch        = "DISPATCH"
	ActionReassign        = "REASSIGN"
	AuditStudentsImported = "STUDENTS_IMPORTED"
	AuditResultsReleased  = "RESULTS_RELEASED"
	AuditResultsWithdrawn = "RESULTS_WITHDRAWN"
	AuditExportRequested  = "EXPORT_REQUESTED"
	AuditGradesExported   = "GRADES_EXPORTED"
	AuditPDFsExported     = "PDFS_EXPORTED"
	AuditExportDownloaded = "EXPORT_DOWNLOADED"
	// AuditExportExpired: the sweep dropped an export's file after the
	// retention (KORRIGO_EXPORT_RETENTION); no actor.
	AuditExportExpired = "EXPORT_EXPIRED"
)

// Service is the exam office. It is safe for concurrent use.
type Service struct {
	db    *db.DB
	log   *zap.Logger
	pub   grading.Publisher
	audit Auditor
	jobs  JobEnqueuer
	// accounts creates student accounts on import; nil refuses createAccounts.
	accounts AccountCreator
	now      func() time.Time
}

// NewService returns the office service. pub (realtime) and audit may be nil.
func NewService(d *db.DB, logger *zap.Logger, pub grading.Publisher, audit Auditor) *Service {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Service{db: d, log: logger, pub: pub, audit: audit, now: time.Now}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func system(ctx context.Context) context.Context { return rules.System(ctx) }

func afterCommit(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// admin returns the caller when they are an admin with a write credential.
func admin(ctx context.Context) (*viewer.Viewer, error) {
	v := viewer.FromContext(ctx)
	switch {
	case v == nil:
		return nil, apperr.Unauthenticatedf("sign in first")
	case !v.IsAdmin():
		return nil, apperr.Forbiddenf("only the exam office can do this")
	case !v.CanWrite():
		return nil, apperr.Forbiddenf("this API token is read-only")
	}
	return v, nil
}

// adminReader is admin without the write requirement (reads of identities).
func adminReader(ctx context.Context) (*viewer.Viewer, error) {
	v := viewer.FromContext(ctx)
	switch {
	case v == nil:
		return nil, apperr.Unauthenticatedf("sign in first")
	case !v.IsAdmin():
		return nil, apperr.Forbiddenf("only the exam office can do this")
	}
	return v, nil
}

func (s *Service) inTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	return db.WithTx(ctx, s.db.Client, fn)
}

func (s *Service) auditTx(ctx context.Context, tx *ent.Tx, action, target string, meta map[string]any) error {
	if s.audit == nil {
		return nil
	}
	return s.audit.AuditTx(ctx, tx, action, target, meta)
}

// fail passes typed errors through and wraps the others for the logs.
func fail(err error, format string, args ...any) error {
	var typed *apperr.Error
	if errors.As(err, &typed) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// liveExam reads an exam on the service's behalf: NOT_FOUND when missing,
// INVALID_TRANSITION when deleted.
func liveExam(ctx context.Context, c *ent.Client, id string) (*ent.Exam, error) {
	e, err := c.Exam.Get(system(ctx), id)
	switch {
	case ent.IsNotFound(err):
		return nil, apperr.NotFoundf("exam %s not found", id)
	case err != nil:
		return nil, fmt.Errorf("read exam %s: %w", id, err)
	case e.DeletedAt != nil:
		return nil, apperr.InvalidTransitionf("exam %s is deleted", id)
	}
	return e, nil
}

// lockCopyRow reads a copy and, on PostgreSQL, locks its row until tx ends
// (grading locks the copy row first in every write, so a lease cannot be
// taken while we decide). SQLite's BEGIN IMMEDIATE already serializes writers.
func (s *Service) lockCopyRow(ctx context.Context, tx *ent.Tx, copyID string) (*ent.ExamCopy, error) {
	q := tx.ExamCopy.Query().Where(examcopy.ID(copyID))
	if s.db.Dialect == dialect.Postgres {
		q.Modify(func(sel *sql.Selector) { sel.For(sql.LockNoKeyUpdate) })
	}
	c, err := q.Only(system(ctx))
	switch {
	case ent.IsNotFound(err):
		return nil, apperr.NotFoundf("copy %s not found", copyID)
	case err != nil:
		return nil, fmt.Errorf("read copy %s: %w", copyID, err)
	}
	return c, nil
}

// event appends one entry to a copy's audit trail.
func event(ctx context.Context, tx *ent.Tx, v *viewer.Viewer, copyID, action string, meta map[string]any, at time.Time) error {
	err := tx.GradingEvent.Create().SetCopyID(copyID).SetActorID(v.UserID).SetAction(action).
		SetMetadata(meta).SetAt(at).Exec(system(ctx))
	if err != nil {
		return fmt.Errorf("record %s event on %s: %w", action, copyID, err)
	}
	return nil
}

// examReader checks the caller may read an exam's aggregates: admins, and
// teachers who correct it.
func (s *Service) examReader(ctx context.Context, examID string) (*viewer.Viewer, error) {
	v := viewer.FromContext(ctx)
	switch {
	case v == nil:
		return nil, apperr.Unauthenticatedf("sign in first")
	case v.IsAdmin():
		return v, nil
	case v.IsTeacher():
		ok, err := s.db.Client.Exam.Query().
			Where(exam.ID(examID), exam.DeletedAtIsNil(), exam.HasCorrectorsWith(user.ID(v.UserID))).
			Exist(system(ctx))
		if err != nil {
			return nil, fmt.Errorf("check corrector of %s: %w", examID, err)
		}
		if ok {
			return v, nil
		}
	}
	return nil, apperr.Forbiddenf("only admins and the exam's correctors see this")
}
