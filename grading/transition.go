package grading

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/exam"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/job"
)

// transition is the only way a copy's status changes (DESIGN.md §5): one
// compare-and-set UPDATE … WHERE id = ? AND status IN (from…) that also bumps the
// version, plus one GradingEvent, in the caller's transaction. set adds columns to
// that same statement (finalize_attempts, graded_at…), so a transition and its
// side fields are one row change and one version. Zero rows updated means the copy
// was not in a from status: INVALID_TRANSITION naming the status it is in.
func (s *Service) transition(ctx context.Context, tx *ent.Tx, copyID string, from []examcopy.Status,
	to examcopy.Status, action string, meta map[string]any, set ...func(*ent.ExamCopyUpdate)) (*ent.ExamCopy, error) {
	now := s.clock()
	u := tx.ExamCopy.Update().
		Where(examcopy.ID(copyID), examcopy.StatusIn(from...)).
		SetStatus(to).
		AddVersion(1).
		SetUpdatedAt(now)
	for _, f := range set {
		f(u)
	}
	n, err := u.Save(system(ctx))
	if err != nil {
		return nil, fmt.Errorf("move copy %s to %s: %w", copyID, to, err)
	}
	if n == 0 {
		c, err := tx.ExamCopy.Get(system(ctx), copyID)
		switch {
		case ent.IsNotFound(err):
			return nil, apperr.NotFoundf("copy %s not found", copyID)
		case err != nil:
			return nil, fmt.Errorf("read copy %s: %w", copyID, err)
		}
		return nil, invalidStatus(c, fmt.Sprintf("%s needs %s", action, joinStatuses(from)))
	}
	c, err := tx.ExamCopy.Get(system(ctx), copyID)
	if err != nil {
		return nil, fmt.Errorf("read copy %s: %w", copyID, err)
	}
	m := map[string]any{"to": string(to), "version": c.Version}
	for k, v := range meta {
		m[k] = v
	}
	if err := s.event(ctx, tx, copyID, action, m, now); err != nil {
		return nil, err
	}
	return c, nil
}

func joinStatuses(ss []examcopy.Status) string {
	out := make([]string, len(ss))
	for i, st := range ss {
		out[i] = string(st)
	}
	return strings.Join(out, " or ")
}

// statusEvent is what transition's caller publishes once committed.
func statusEvent(ctx context.Context, from examcopy.Status, c *ent.ExamCopy) StatusEvent {
	ev := StatusEvent{ExamID: c.ExamID, CopyID: c.ID, From: from, Status: c.Status, CopyVersion: c.Version, At: c.UpdatedAt}
	if c.AssignedCorrectorID != nil {
		ev.AssigneeID = *c.AssignedCorrectorID
	}
	if id := actorID(ctx); id != nil {
		ev.ActorID = *id
	}
	return ev
}

// MarkCopyReady moves a STAGING copy to READY (admins; DESIGN.md §5).
func (s *Service) MarkCopyReady(ctx context.Context, copyID string) (*ent.ExamCopy, error) {
	v, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	var c *ent.ExamCopy
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		if _, err := s.lockCopy(ctx, tx, v, copyID); err != nil {
			return err
		}
		c, err = s.transition(ctx, tx, copyID, []examcopy.Status{examcopy.StatusSTAGING}, examcopy.StatusREADY,
			ActionMarkReady, nil)
		return err
	})
	if err != nil {
		return nil, fail(err, "mark copy %s ready", copyID)
	}
	c = c.Unwrap()
	s.pub.CopyStatusChanged(afterCommit(ctx), statusEvent(ctx, examcopy.StatusSTAGING, c))
	return c, nil
}

// CompleteFinalize is called by the finalization worker once the final PDF is in
// the blob store: GRADING_IN_PROGRESS → GRADED, graded_at and final blob set, the
// exam's scheme frozen if it was not yet, and the copy's active FINALIZE_COPY job
// closed (SUCCEEDED, active_key cleared) in the same transaction. It acts on the
// server's behalf: no viewer is required, and resolvers must not expose it.
func (s *Service) CompleteFinalize(ctx context.Context, copyID, finalBlobID string) (*ent.ExamCopy, error) {
	if finalBlobID == "" {
		return nil, apperr.BadField("finalBlobId", "a final blob is required")
	}
	var c *ent.ExamCopy
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		now := s.clock()
		var err error
		c, err = s.transition(ctx, tx, copyID, []examcopy.Status{examcopy.StatusGRADING_IN_PROGRESS},
			examcopy.StatusGRADED, ActionFinalizeSucceeded, map[string]any{"finalBlobId": finalBlobID},
			func(u *ent.ExamCopyUpdate) { u.SetGradedAt(now).SetFinalBlobID(finalBlobID).ClearGradingError() })
		if err != nil {
			return err
		}
		// The scheme freezes with the first graded copy (DESIGN.md §4): scores of
		// graded copies must keep meaning what they meant.
		err = tx.Exam.Update().
			Where(exam.ID(c.ExamID), exam.SchemeFrozenAtIsNil()).
			SetSchemeFrozenAt(now).
			Exec(system(ctx))
		if err != nil {
			return fmt.Errorf("freeze scheme of exam %s: %w", c.ExamID, err)
		}
		return s.closeFinalizeJob(ctx, tx, copyID, job.StateSUCCEEDED, "")
	})
	if err != nil {
		return nil, fail(err, "complete finalization of copy %s", copyID)
	}
	c = c.Unwrap()
	s.pub.CopyStatusChanged(afterCommit(ctx), statusEvent(ctx, examcopy.StatusGRADING_IN_PROGRESS, c))
	return c, nil
}

// FailFinalize is called by the finalization worker when its last attempt failed:
// GRADING_IN_PROGRESS → GRADING_FAILED with a readable reason, and the active job
// closed (FAILED, active_key cleared) so a new finalizeCopy can start at once.
func (s *Service) FailFinalize(ctx context.Context, copyID, reason string) (*ent.ExamCopy, error) {
	reason = truncate(strings.TrimSpace(reason), maxGradingError)
	if reason == "" {
		reason = "the final PDF could not be produced"
	}
	var c *ent.ExamCopy
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		var err error
		c, err = s.transition(ctx, tx, copyID, []examcopy.Status{examcopy.StatusGRADING_IN_PROGRESS},
			examcopy.StatusGRADING_FAILED, ActionFinalizeFailed, map[string]any{"error": reason},
			func(u *ent.ExamCopyUpdate) { u.SetGradingError(reason) })
		if err != nil {
			return err
		}
		return s.closeFinalizeJob(ctx, tx, copyID, job.StateFAILED, reason)
	})
	if err != nil {
		return nil, fail(err, "fail finalization of copy %s", copyID)
	}
	c = c.Unwrap()
	s.pub.CopyStatusChanged(afterCommit(ctx), statusEvent(ctx, examcopy.StatusGRADING_IN_PROGRESS, c))
	return c, nil
}

// maxGradingError is the column's limit (bytes, as ent's MaxLen counts).
const maxGradingError = 2000

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
