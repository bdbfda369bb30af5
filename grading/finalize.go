package grading

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/copylock"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/job"
	"github.com/korrigo/korrigo/ent/questionscore"
	"github.com/korrigo/korrigo/ids"
)

// finalizeKey is the jobs.active_key of a copy's finalization. The column is
// unique, so a copy has at most one active FINALIZE_COPY job whatever races.
// The key is given back (set to NULL) when the job ends: CompleteFinalize and
// FailFinalize do it in the transaction that moves the copy out of
// GRADING_IN_PROGRESS; a job runner that ends a finalization job another way
// (cancellation, `korrigo recover`) must clear it too.
func finalizeKey(copyID string) string { return "finalize:" + copyID }

// FinalizeCopy asks for the copy's final PDF (DESIGN.md §8). It checks the copy is
// complete (every leaf question scored, an appreciation when the exam requires
// one), then in one transaction moves it READY|GRADING_FAILED →
// GRADING_IN_PROGRESS, records a FINALIZE_COPY job (handed to the job runner when
// there is one; otherwise it stays QUEUED) and ends the lease. It is idempotent:
// on a copy already GRADING_IN_PROGRESS it returns that copy's active job,
// whatever the token (the first call ended the lease), so concurrent or repeated
// calls all get the same job.
func (s *Service) FinalizeCopy(ctx context.Context, copyID, lockToken string) (*ent.Job, error) {
	v, err := grader(ctx)
	if err != nil {
		return nil, err
	}
	var (
		j     *ent.Job
		from  examcopy.Status
		c     *ent.ExamCopy // set when this call made the transition
		owner string        // the ended lease's holder: the caller
	)
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		c0, err := s.lockCopy(ctx, tx, v, copyID)
		if err != nil {
			return err
		}
		switch c0.Status {
		case examcopy.StatusGRADING_IN_PROGRESS:
			j, err = s.currentFinalizeJob(ctx, tx, c0)
			return err
		case examcopy.StatusREADY, examcopy.StatusGRADING_FAILED:
		default:
			return invalidStatus(c0, "only READY or GRADING_FAILED copies can be finalized")
		}
		if err := s.requireLease(ctx, tx, c0, v, lockToken); err != nil {
			return err
		}
		if err := s.checkComplete(ctx, tx, c0); err != nil {
			return err
		}
		if owner, err = nameOf(ctx, tx, v); err != nil {
			return err
		}
		from = c0.Status
		jobID := ids.New(ids.Job)
		c, err = s.transition(ctx, tx, c0.ID,
			[]examcopy.Status{examcopy.StatusREADY, examcopy.StatusGRADING_FAILED}, examcopy.StatusGRADING_IN_PROGRESS,
			ActionFinalize, map[string]any{"jobId": jobID, "attempt": c0.FinalizeAttempts + 1},
			func(u *ent.ExamCopyUpdate) { u.AddFinalizeAttempts(1) })
		if err != nil {
			return err
		}
		if j, err = s.recordFinalizeJob(ctx, tx, jobID, c, v); err != nil {
			return err
		}
		if s.jobs != nil {
			if err := s.jobs.EnqueueFinalize(ctx, tx, j); err != nil {
				return fmt.Errorf("enqueue finalization job: %w", err)
			}
		}
		// The grading is over: nobody may change the copy while it is rendered.
		if _, err := tx.CopyLock.Delete().Where(copylock.CopyID(c.ID)).Exec(system(ctx)); err != nil {
			return fmt.Errorf("end lease: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fail(err, "finalize copy %s", copyID)
	}
	if c != nil {
		c = c.Unwrap()
		s.pub.CopyStatusChanged(afterCommit(ctx), statusEvent(ctx, from, c))
		s.pub.CopyLockChanged(afterCommit(ctx), LockEvent{ExamID: c.ExamID, CopyID: c.ID, Kind: LockReleased,
			OwnerID: v.UserID, OwnerName: owner, CopyVersion: c.Version, At: c.UpdatedAt})
	}
	return j.Unwrap(), nil
}

// checkComplete refuses to finalize a copy that is not fully graded, listing what
// is missing.
func (s *Service) checkComplete(ctx context.Context, tx *ent.Tx, c *ent.ExamCopy) error {
	ex, err := tx.Exam.Get(system(ctx), c.ExamID)
	if err != nil {
		return fmt.Errorf("read exam: %w", err)
	}
	scores, err := tx.QuestionScore.Query().Where(questionscore.CopyID(c.ID)).All(system(ctx))
	if err != nil {
		return fmt.Errorf("read scores: %w", err)
	}
	sheet := newScoreSheet(ex.Scheme, scores)
	if len(sheet.leaves) == 0 {
		return apperr.BadInputf("the exam has no marking scheme yet")
	}
	missing, over := sheet.missing(), sheet.overMax()
	noAppreciation := ex.RequireAppreciation && strings.TrimSpace(c.Appreciation) == ""
	if len(missing) == 0 && len(over) == 0 && !noAppreciation {
		return nil
	}
	var why []string
	if len(missing) > 0 {
		why = append(why, "unscored questions: "+strings.Join(missing, ", "))
	}
	if len(over) > 0 {
		why = append(why, "scores above the question's points: "+strings.Join(over, ", "))
	}
	if noAppreciation {
		why = append(why, "this exam requires an appreciation")
	}
	return apperr.BadInputf("the copy is not fully graded (%s)", strings.Join(why, "; ")).
		With("missingQuestionIds", nonNil(missing)).
		With("overMaxQuestionIds", nonNil(over)).
		With("appreciationMissing", noAppreciation)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// recordFinalizeJob inserts the copy's active FINALIZE_COPY job.
func (s *Service) recordFinalizeJob(ctx context.Context, tx *ent.Tx, jobID string, c *ent.ExamCopy, v *viewer.Viewer) (*ent.Job, error) {
	key := finalizeKey(c.ID)
	// A finished job whose runner died before giving its key back must not block
	// a new finalization; an unfinished one must (the unique index refuses it).
	err := tx.Job.Update().
		Where(job.ActiveKey(key), job.StateIn(job.StateSUCCEEDED, job.StateFAILED, job.StateCANCELLED)).
		ClearActiveKey().
		Exec(system(ctx))
	if err != nil {
		return nil, fmt.Errorf("release stale job key: %w", err)
	}
	args, err := json.Marshal(map[string]string{"copyId": c.ID})
	if err != nil {
		return nil, err
	}
	now := s.clock()
	j, err := tx.Job.Create().
		SetID(jobID).
		SetKind(job.KindFINALIZE_COPY).
		SetState(job.StateQUEUED).
		SetCopyID(c.ID).
		SetExamID(c.ExamID).
		SetRequestedByID(v.UserID).
		SetActiveKey(key).
		SetArgs(args).
		SetCreatedAt(now).
		SetUpdatedAt(now).
		Save(system(ctx))
	if err != nil {
		return nil, fmt.Errorf("record finalization job: %w", err)
	}
	return j, nil
}

// currentFinalizeJob is the job of a copy being finalized: the active one, or
// the latest if a runner already gave the key back without moving the copy on.
func (s *Service) currentFinalizeJob(ctx context.Context, tx *ent.Tx, c *ent.ExamCopy) (*ent.Job, error) {
	j, err := tx.Job.Query().Where(job.ActiveKey(finalizeKey(c.ID))).Only(system(ctx))
	if ent.IsNotFound(err) {
		j, err = tx.Job.Query().
			Where(job.CopyID(c.ID), job.KindEQ(job.KindFINALIZE_COPY)).
			Order(ent.Desc(job.FieldCreatedAt)).
			First(system(ctx))
	}
	switch {
	case ent.IsNotFound(err):
		return nil, invalidStatus(c, "it is being finalized but has no finalization job: run `korrigo recover`")
	case err != nil:
		return nil, fmt.Errorf("read finalization job: %w", err)
	}
	return j, nil
}

// closeFinalizeJob ends the copy's active finalization job in the transaction
// that moves the copy out of GRADING_IN_PROGRESS, and gives its key back.
func (s *Service) closeFinalizeJob(ctx context.Context, tx *ent.Tx, copyID string, state job.State, reason string) error {
	u := tx.Job.Update().
		Where(job.ActiveKey(finalizeKey(copyID))).
		SetState(state).
		SetFinishedAt(s.clock()).
		ClearActiveKey()
	if reason != "" {
		u.SetError(reason)
	}
	if err := u.Exec(system(ctx)); err != nil {
		return fmt.Errorf("close finalization job: %w", err)
	}
	return nil
}
