package grading

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/questionscore"
	"github.com/korrigo/korrigo/grading/scheme"
)

// Text limits in bytes, as the schema's MaxLen counts.
const (
	MaxAppreciation = 4000
	MaxRemark       = 2000
	// pointsTolerance absorbs float error when comparing points to a maximum.
	pointsTolerance = 1e-9
)

// SetQuestionScore scores one leaf question of the exam's scheme under the
// caller's lease: 0 ≤ points ≤ the leaf's points, at most two decimals. Nil
// points remove the score. A nil remark keeps the stored one.
func (s *Service) SetQuestionScore(ctx context.Context, copyID, lockToken, questionID string, points *float64, remark *string) (*ent.ExamCopy, error) {
	v, err := grader(ctx)
	if err != nil {
		return nil, err
	}
	if err := validScore(points); err != nil {
		return nil, err
	}
	if remark != nil {
		if err := checkText("remark", *remark, MaxRemark); err != nil {
			return nil, err
		}
	}
	var c *ent.ExamCopy
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		c0, err := s.copyForGrading(ctx, tx, v, copyID, lockToken)
		if err != nil {
			return err
		}
		ex, err := tx.Exam.Get(system(ctx), c0.ExamID)
		if err != nil {
			return fmt.Errorf("read exam: %w", err)
		}
		leaf, ok := ex.Scheme.Leaf(questionID)
		switch {
		case !ok:
			return apperr.BadField("questionId", "%q is not a question of this exam's marking scheme", questionID)
		case points != nil && *points > leaf.Points+pointsTolerance:
			return apperr.BadField("points", "question %s is scored out of %g", questionID, leaf.Points)
		}
		now := s.clock()
		if points == nil {
			_, err = tx.QuestionScore.Delete().
				Where(questionscore.CopyID(c0.ID), questionscore.QuestionID(questionID)).
				Exec(system(ctx))
		} else {
			create := tx.QuestionScore.Create().
				SetCopyID(c0.ID).
				SetQuestionID(questionID).
				SetPoints(*points).
				SetScoredByID(v.UserID).
				SetCreatedAt(now).
				SetUpdatedAt(now)
			if remark != nil {
				create.SetRemark(*remark)
			}
			err = create.
				OnConflictColumns(questionscore.FieldCopyID, questionscore.FieldQuestionID).
				Update(func(u *ent.QuestionScoreUpsert) {
					u.SetPoints(*points).SetScoredByID(v.UserID).SetUpdatedAt(now)
					if remark != nil {
						u.SetRemark(*remark)
					}
				}).
				Exec(system(ctx))
		}
		if err != nil {
			return fmt.Errorf("write score of %s: %w", questionID, err)
		}
		c, err = s.touchCopy(ctx, tx, c0, nil)
		return err
	})
	if err != nil {
		return nil, fail(err, "score question %s of copy %s", questionID, copyID)
	}
	return c.Unwrap(), nil
}

// validScore checks what can be checked without the scheme.
func validScore(points *float64) error {
	if points == nil {
		return nil
	}
	p := *points
	switch {
	case math.IsNaN(p) || math.IsInf(p, 0) || p < 0:
		return apperr.BadField("points", "points must be a number ≥ 0")
	case math.Abs(p*100-math.Round(p*100)) > 1e-6:
		return apperr.BadField("points", "points have at most two decimals")
	}
	return nil
}

// SetAppreciation sets the copy's overall comment under the caller's lease.
func (s *Service) SetAppreciation(ctx context.Context, copyID, lockToken, text string) (*ent.ExamCopy, error) {
	v, err := grader(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkText("text", text, MaxAppreciation); err != nil {
		return nil, err
	}
	var c *ent.ExamCopy
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		c0, err := s.copyForGrading(ctx, tx, v, copyID, lockToken)
		if err != nil {
			return err
		}
		c, err = s.touchCopy(ctx, tx, c0, func(u *ent.ExamCopyUpdateOne) { u.SetAppreciation(text) })
		return err
	})
	if err != nil {
		return nil, fail(err, "set appreciation of copy %s", copyID)
	}
	return c.Unwrap(), nil
}

// touchCopy records a grading change on the copy row (version + 1, so clients and
// subscribers see the copy changed), guarded by the status like every grading
// write.
func (s *Service) touchCopy(ctx context.Context, tx *ent.Tx, c *ent.ExamCopy, set func(*ent.ExamCopyUpdateOne)) (*ent.ExamCopy, error) {
	u := tx.ExamCopy.UpdateOneID(c.ID).
		Where(examcopy.StatusIn(examcopy.StatusREADY, examcopy.StatusGRADING_FAILED)).
		AddVersion(1).
		SetUpdatedAt(s.clock())
	if set != nil {
		set(u)
	}
	updated, err := u.Save(system(ctx))
	switch {
	case ent.IsNotFound(err):
		return nil, invalidStatus(c, "it can only be graded while READY or GRADING_FAILED")
	case err != nil:
		return nil, fmt.Errorf("update copy: %w", err)
	}
	return updated, nil
}

// Scores are the copy's question scores in the scheme's order, as the caller may
// see them (NOT_FOUND when the copy is not visible).
func (s *Service) Scores(ctx context.Context, copyID string) ([]*ent.QuestionScore, error) {
	c, err := s.Copy(ctx, copyID)
	if err != nil {
		return nil, err
	}
	return s.CopyScores(ctx, c, nil)
}

// CopyScores are the scores of c, which the caller read through the read rules,
// in the scheme's order (questions since removed from the scheme come last).
// batch: see Batch.
func (s *Service) CopyScores(ctx context.Context, c *ent.ExamCopy, batch Batch) ([]*ent.QuestionScore, error) {
	sheet, err := s.sheet(ctx, c, batch)
	if err != nil {
		return nil, err
	}
	return sheet.ordered(), nil
}

// Total is the sum of the copy's scores on the questions of the current scheme,
// rounded to the hundredth. The caller has read c through the read rules; the
// scores and scheme are read on its behalf (or taken from c's loaded edges).
// batch: see Batch.
func (s *Service) Total(ctx context.Context, c *ent.ExamCopy, batch Batch) (float64, error) {
	sheet, err := s.sheet(ctx, c, batch)
	if err != nil {
		return 0, err
	}
	return sheet.total(), nil
}

// Grade20 is the total on 20 (DESIGN.md §4), nil until every question is scored.
// batch: see Batch.
func (s *Service) Grade20(ctx context.Context, c *ent.ExamCopy, batch Batch) (*float64, error) {
	sheet, err := s.sheet(ctx, c, batch)
	if err != nil {
		return nil, err
	}
	if len(sheet.leaves) == 0 || len(sheet.missing()) > 0 {
		return nil, nil
	}
	g := scheme.Grade20(sheet.total(), sheet.scheme.Max())
	return &g, nil
}

// scoreSheet is a copy's scores against its exam's scheme. It is read-only once
// built: the read cache shares it between the resolvers of one copy.
type scoreSheet struct {
	scheme scheme.Scheme
	leaves []scheme.Leaf
	all    []*ent.QuestionScore // as read
	scores map[string]*ent.QuestionScore
}

func newScoreSheet(sch scheme.Scheme, scores []*ent.QuestionScore) scoreSheet {
	return sheetOf(sch, sch.Leaves(), scores)
}

// sheetOf is newScoreSheet with the scheme's leaves already listed (shared, read-only).
func sheetOf(sch scheme.Scheme, leaves []scheme.Leaf, scores []*ent.QuestionScore) scoreSheet {
	sheet := scoreSheet{scheme: sch, leaves: leaves, all: scores, scores: make(map[string]*ent.QuestionScore, len(scores))}
	for _, q := range scores {
		sheet.scores[q.QuestionID] = q
	}
	return sheet
}

// sheet is c's score sheet: from the read cache when ctx carries one, otherwise
// read for c alone.
func (s *Service) sheet(ctx context.Context, c *ent.ExamCopy, batch Batch) (scoreSheet, error) {
	if rc := readCacheFrom(ctx); rc != nil {
		return s.cachedSheet(ctx, rc, c, batch)
	}
	sch, err := s.schemeOf(ctx, c)
	if err != nil {
		return scoreSheet{}, err
	}
	scores, err := c.Edges.ScoresOrErr()
	if err != nil {
		scores, err = s.db.Client.QuestionScore.Query().Where(questionscore.CopyID(c.ID)).All(system(ctx))
		if err != nil {
			return scoreSheet{}, fmt.Errorf("read scores of %s: %w", c.ID, err)
		}
	}
	return newScoreSheet(sch, scores), nil
}

func (s *Service) schemeOf(ctx context.Context, c *ent.ExamCopy) (scheme.Scheme, error) {
	if ex, err := c.Edges.ExamOrErr(); err == nil {
		return ex.Scheme, nil
	}
	ex, err := s.db.Client.Exam.Get(system(ctx), c.ExamID)
	if err != nil {
		return nil, fmt.Errorf("read exam of %s: %w", c.ID, err)
	}
	return ex.Scheme, nil
}

// ordered are the scores in the scheme's order, questions since removed from the
// scheme last; a new slice, the sheet is shared.
func (sh scoreSheet) ordered() []*ent.QuestionScore {
	order := make(map[string]int, len(sh.leaves))
	for i, l := range sh.leaves {
		order[l.ID] = i
	}
	rank := func(q *ent.QuestionScore) int {
		if i, ok := order[q.QuestionID]; ok {
			return i
		}
		return len(order)
	}
	out := slices.Clone(sh.all)
	slices.SortStableFunc(out, func(a, b *ent.QuestionScore) int { return rank(a) - rank(b) })
	return out
}

func (sh scoreSheet) total() float64 {
	sum := 0.0
	for _, l := range sh.leaves {
		if q, ok := sh.scores[l.ID]; ok {
			sum += q.Points
		}
	}
	return math.Round(sum*100) / 100
}

// missing lists the leaf questions without a score, in the scheme's order.
func (sh scoreSheet) missing() []string {
	var out []string
	for _, l := range sh.leaves {
		if _, ok := sh.scores[l.ID]; !ok {
			out = append(out, l.ID)
		}
	}
	return out
}

// overMax lists the scores above their question's points (the scheme changed
// after they were given).
func (sh scoreSheet) overMax() []string {
	var out []string
	for _, l := range sh.leaves {
		if q, ok := sh.scores[l.ID]; ok && q.Points > l.Points+pointsTolerance {
			out = append(out, l.ID)
		}
	}
	return out
}
