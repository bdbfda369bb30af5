package jobs

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/annotation"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/job"
	"github.com/korrigo/korrigo/ent/questionscore"
	"github.com/korrigo/korrigo/grading/scheme"
	"github.com/korrigo/korrigo/pdf"
	"github.com/korrigo/korrigo/storage"
)

type finalizeWorker struct {
	river.WorkerDefaults[finalizeArgs]
	s *Service
}

// Work renders the copy's final PDF outside any transaction (in the PDF
// subprocess), stores it (temp file, fsync, rename), then moves the copy to
// GRADED through grading.CompleteFinalize. A failed attempt leaves no file
// behind; the last one moves the copy to GRADING_FAILED with the reason.
func (w *finalizeWorker) Work(ctx context.Context, rj *river.Job[finalizeArgs]) error {
	s := w.s
	jobID := rj.Args.JobID
	a, ok, err := s.begin(ctx, jobID, rj.JobRow)
	if err != nil || !ok {
		return err
	}
	if a.job.CopyID == nil {
		return a.fail(ctx, fmt.Errorf("%w: finalization job without a copy", errPermanent),
			func(ctx context.Context, reason string) error { return s.markFailed(ctx, jobID, reason) })
	}
	copyID := *a.job.CopyID
	err = s.safely(ctx, a, func() error { return s.finalize(ctx, a, copyID) })
	if err == nil {
		return nil
	}
	return a.fail(ctx, err, func(ctx context.Context, reason string) error {
		_, ferr := s.cfg.Grading.FailFinalize(ctx, copyID, reason)
		if apperr.HasCode(ferr, apperr.InvalidTransition) {
			// The copy moved on without us (recover): just close the job.
			return s.markFailed(ctx, jobID, reason)
		}
		return ferr
	})
}

func (s *Service) finalize(ctx context.Context, a *attempt, copyID string) error {
	c, err := s.cfg.DB.Client.ExamCopy.Get(system(ctx), copyID)
	if err != nil {
		return fmt.Errorf("read copy: %w", err)
	}
	if c.Status != examcopy.StatusGRADING_IN_PROGRESS {
		return fmt.Errorf("%w: the copy is %s, not being finalized", errPermanent, c.Status)
	}
	if c.SourceBlobID == nil {
		return fmt.Errorf("%w: the copy has no scanned pages", errPermanent)
	}
	a.progress(ctx, 0, 3)
	in, err := s.BurnInput(ctx, c)
	if err != nil {
		return err
	}
	data, _, err := s.readBlob(ctx, *c.SourceBlobID)
	if err != nil {
		return err
	}
	a.progress(ctx, 1, 3)
	out, err := s.cfg.Runner.Burn(ctx, data, in.Marks, in.Summary)
	if err != nil {
		return err
	}
	if err := s.afterPDF(ctx, a); err != nil {
		return err
	}
	a.progress(ctx, 2, 3)
	ref, err := s.put(ctx, out)
	if err != nil {
		return err
	}
	if err := s.afterStore(ctx, a); err != nil {
		s.discard(ctx, ref)
		return err
	}
	var b *ent.Blob
	err = db.WithTx(ctx, s.cfg.DB.Client, func(tx *ent.Tx) error {
		b, err = blobRow(ctx, tx, ref, c.PageCount+1)
		return err
	})
	if err == nil {
		_, err = s.cfg.Grading.CompleteFinalize(ctx, copyID, b.ID)
	}
	if err != nil {
		s.discardBlob(ctx, ref)
		if apperr.HasCode(err, apperr.InvalidTransition) {
			return fmt.Errorf("%w: %v", errPermanent, err)
		}
		return err
	}
	return nil
}

// discardBlob removes a blob (row and file) nothing refers to: a final PDF
// whose copy did not take it.
func (s *Service) discardBlob(ctx context.Context, ref storage.Ref) {
	ctx = context.WithoutCancel(ctx)
	_ = db.WithTx(ctx, s.cfg.DB.Client, func(tx *ent.Tx) error {
		_, err := deleteUnreferencedBlob(ctx, tx, ref.SHA256)
		return err
	})
	s.discard(ctx, ref)
}

// BurnInput gathers what the final PDF shows: the annotations per page and
// the summary (anonymous id, grade on 20, total over max, per-question
// scores and remarks, appreciation). No student name.
func (s *Service) BurnInput(ctx context.Context, c *ent.ExamCopy) (BurnInput, error) {
	ctx = system(ctx)
	ex, err := s.cfg.DB.Client.Exam.Get(ctx, c.ExamID)
	if err != nil {
		return BurnInput{}, fmt.Errorf("read exam: %w", err)
	}
	scores, err := s.cfg.DB.Client.QuestionScore.Query().Where(questionscore.CopyID(c.ID)).All(ctx)
	if err != nil {
		return BurnInput{}, fmt.Errorf("read scores: %w", err)
	}
	anns, err := s.cfg.DB.Client.Annotation.Query().
		Where(annotation.CopyID(c.ID), annotation.DeletedAtIsNil()).
		Order(ent.Asc(annotation.FieldPageIndex), ent.Asc(annotation.FieldCreatedAt)).All(ctx)
	if err != nil {
		return BurnInput{}, fmt.Errorf("read annotations: %w", err)
	}
	return burnInput(c, ex.Scheme, scores, anns), nil
}

// BurnInput is the input of pdf.Burn.
type BurnInput struct {
	Marks   []pdf.PageMarks
	Summary pdf.Summary
}

func burnInput(c *ent.ExamCopy, sch scheme.Scheme, scores []*ent.QuestionScore, anns []*ent.Annotation) BurnInput {
	byQ := map[string]*ent.QuestionScore{}
	for _, sc := range scores {
		byQ[sc.QuestionID] = sc
	}
	var in BurnInput
	total := 0.0
	for _, l := range sch.Leaves() {
		q := pdf.QuestionLine{Label: l.Label, Max: l.Points}
		if sc := byQ[l.ID]; sc != nil {
			q.Points, q.Remark = sc.Points, sc.Remark
			total += sc.Points
		}
		in.Summary.Questions = append(in.Summary.Questions, q)
	}
	in.Summary.AnonymousID = c.AnonymousID
	in.Summary.Total = total
	in.Summary.Max = sch.Max()
	in.Summary.Grade20 = scheme.Grade20(total, in.Summary.Max)
	in.Summary.Appreciation = c.Appreciation
	pages := map[int]int{}
	for _, an := range anns {
		i, ok := pages[an.PageIndex]
		if !ok {
			i = len(in.Marks)
			pages[an.PageIndex] = i
			in.Marks = append(in.Marks, pdf.PageMarks{PageIndex: an.PageIndex})
		}
		in.Marks[i].Marks = append(in.Marks[i].Marks, pdf.Mark{X: an.X, Y: an.Y, W: an.W, H: an.H,
			Kind: string(an.Kind), Text: an.Text, Points: an.Points})
	}
	return in
}

// closeJob ends a live job.
func closeJob(ctx context.Context, tx *ent.Tx, jobID string, state job.State, reason string) error {
	u := tx.Job.Update().Where(job.ID(jobID), job.StateIn(live...)).
		SetState(state).SetFinishedAt(now()).SetUpdatedAt(now()).ClearActiveKey()
	if reason != "" {
		u.SetError(truncate(reason, 2000))
	}
	return u.Exec(system(ctx))
}
