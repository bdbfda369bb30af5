package office

import (
	"context"
	"fmt"
	"math"
	"slices"

	"entgo.io/ent/dialect/sql"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/exam"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/student"
	"github.com/korrigo/korrigo/grading/scheme"
)

// ReleaseResults lets students see their GRADED copies of the exam (admins).
// Idempotent: a second call keeps the first release time and writes nothing.
// exam.progress.notGraded tells what is not graded yet.
func (s *Service) ReleaseResults(ctx context.Context, examID string) (*ent.Exam, error) {
	return s.setReleased(ctx, examID, true)
}

// WithdrawResults hides the exam's results from students again (admins). Idempotent.
func (s *Service) WithdrawResults(ctx context.Context, examID string) (*ent.Exam, error) {
	return s.setReleased(ctx, examID, false)
}

func (s *Service) setReleased(ctx context.Context, examID string, release bool) (*ent.Exam, error) {
	if _, err := admin(ctx); err != nil {
		return nil, err
	}
	var out *ent.Exam
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		sctx := system(ctx)
		if _, err := liveExam(ctx, tx.Client(), examID); err != nil {
			return err
		}
		u := tx.Exam.Update().Where(exam.ID(examID))
		action := AuditResultsReleased
		if release {
			u.Where(exam.ResultsReleasedAtIsNil()).SetResultsReleasedAt(s.clock())
		} else {
			u.Where(exam.ResultsReleasedAtNotNil()).ClearResultsReleasedAt()
			action = AuditResultsWithdrawn
		}
		n, err := u.Save(sctx)
		if err != nil {
			return fmt.Errorf("update exam %s: %w", examID, err)
		}
		if n > 0 {
			notGraded, err := tx.ExamCopy.Query().Where(examcopy.ExamID(examID),
				examcopy.StatusNEQ(examcopy.StatusGRADED)).Count(sctx)
			if err != nil {
				return fmt.Errorf("count copies: %w", err)
			}
			if err := s.auditTx(ctx, tx, action, examID, map[string]any{"notGraded": notGraded}); err != nil {
				return err
			}
		}
		out, err = tx.Exam.Get(sctx, examID)
		return err
	})
	if err != nil {
		return nil, fail(err, "release results of %s", examID)
	}
	return out.Unwrap(), nil
}

// Progress counts the exam's copies per status (admins and the exam's correctors).
func (s *Service) Progress(ctx context.Context, examID string) (*ExamProgress, error) {
	if _, err := s.examReader(ctx, examID); err != nil {
		return nil, err
	}
	sctx := system(ctx)
	var rows []struct {
		Status       examcopy.Status `json:"status"`
		Count        int             `json:"count"`
		Unassigned   int             `json:"unassigned"`
		Unidentified int             `json:"unidentified"`
	}
	// One statement: per status, the count and how many lack a corrector or a student.
	err := s.db.Client.ExamCopy.Query().Where(examcopy.ExamID(examID)).
		GroupBy(examcopy.FieldStatus).
		Aggregate(ent.Count(),
			sumNull("unassigned", examcopy.FieldAssignedCorrectorID),
			sumNull("unidentified", examcopy.FieldStudentID)).
		Scan(sctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("count copies of %s: %w", examID, err)
	}
	p := &ExamProgress{}
	for _, r := range rows {
		p.Total += r.Count
		p.Unassigned += r.Unassigned
		p.Unidentified += r.Unidentified
		switch r.Status {
		case examcopy.StatusSTAGING:
			p.Staging = r.Count
		case examcopy.StatusREADY:
			p.Ready = r.Count
		case examcopy.StatusGRADING_IN_PROGRESS:
			p.GradingInProgress = r.Count
		case examcopy.StatusGRADED:
			p.Graded = r.Count
		case examcopy.StatusGRADING_FAILED:
			p.GradingFailed = r.Count
		}
	}
	p.NotGraded = p.Total - p.Graded
	return p, nil
}

// gradedSheet is one GRADED copy's scores against the scheme.
type gradedSheet struct {
	copy   *ent.ExamCopy
	scores map[string]*ent.QuestionScore
	total  float64
	grade  float64
}

func sheetOf(c *ent.ExamCopy, leaves []scheme.Leaf, max float64) gradedSheet {
	sh := gradedSheet{copy: c, scores: map[string]*ent.QuestionScore{}}
	for _, q := range c.Edges.Scores {
		sh.scores[q.QuestionID] = q
	}
	for _, l := range leaves {
		if q, ok := sh.scores[l.ID]; ok {
			sh.total += q.Points
		}
	}
	sh.total = math.Round(sh.total*100) / 100
	sh.grade = scheme.Grade20(sh.total, max)
	return sh
}

// Statistics summarizes the grades of the exam's GRADED copies (admins and
// the exam's correctors); onlyMine restricts them to the caller's copies.
func (s *Service) Statistics(ctx context.Context, examID string, onlyMine bool) (*ExamStatistics, error) {
	v, err := s.examReader(ctx, examID)
	if err != nil {
		return nil, err
	}
	sctx := system(ctx)
	ex, err := s.db.Client.Exam.Get(sctx, examID)
	if err != nil {
		return nil, fmt.Errorf("read exam %s: %w", examID, err)
	}
	q := s.db.Client.ExamCopy.Query().Where(examcopy.ExamID(examID), examcopy.StatusEQ(examcopy.StatusGRADED))
	if onlyMine {
		q.Where(examcopy.AssignedCorrectorID(v.UserID))
	}
	copies, err := q.WithScores().All(sctx)
	if err != nil {
		return nil, fmt.Errorf("read graded copies of %s: %w", examID, err)
	}
	return statistics(ex.Scheme, copies), nil
}

func round2(x float64) *float64 { r := math.Round(x*100) / 100; return &r }

func statistics(sch scheme.Scheme, copies []*ent.ExamCopy) *ExamStatistics {
	leaves, max := sch.Leaves(), sch.Max()
	st := &ExamStatistics{Count: len(copies), Histogram: make([]HistogramBin, 20), Questions: []QuestionStatistics{}}
	for i := range st.Histogram {
		st.Histogram[i] = HistogramBin{From: float64(i), To: float64(i + 1)}
	}
	grades := make([]float64, 0, len(copies))
	sums := make([]float64, len(leaves))
	scored := make([]int, len(leaves))
	for _, c := range copies {
		sh := sheetOf(c, leaves, max)
		grades = append(grades, sh.grade)
		bin := min(max0(int(math.Floor(sh.grade))), 19)
		st.Histogram[bin].Count++
		for i, l := range leaves {
			if q, ok := sh.scores[l.ID]; ok {
				sums[i] += q.Points
				scored[i]++
			}
		}
	}
	for i, l := range leaves {
		qs := QuestionStatistics{QuestionID: l.ID, Label: l.Label, MaxPoints: l.Points, Scored: scored[i]}
		if scored[i] > 0 {
			mean := sums[i] / float64(scored[i])
			qs.Mean = round2(mean)
			if l.Points > 0 {
				qs.SuccessRate = round2(mean / l.Points)
			}
		}
		st.Questions = append(st.Questions, qs)
	}
	if len(grades) == 0 {
		return st
	}
	slices.Sort(grades)
	sum := 0.0
	for _, g := range grades {
		sum += g
	}
	mean := sum / float64(len(grades))
	variance := 0.0
	for _, g := range grades {
		variance += (g - mean) * (g - mean)
	}
	variance /= float64(len(grades))
	n := len(grades)
	median := grades[n/2]
	if n%2 == 0 {
		median = (grades[n/2-1] + grades[n/2]) / 2
	}
	st.Mean, st.Median, st.StdDev = round2(mean), round2(median), round2(math.Sqrt(variance))
	st.Min, st.Max = round2(grades[0]), round2(grades[n-1])
	return st
}

func max0(i int) int {
	if i < 0 {
		return 0
	}
	return i
}

// MyResults lists the caller's own GRADED copies of released exams, newest
// exam first. Everyone but a student gets an empty list. Reads go through the
// caller's privacy rules (and the same conditions are stated here again).
func (s *Service) MyResults(ctx context.Context) ([]*StudentResult, error) {
	v := viewer.FromContext(ctx)
	if v == nil {
		return nil, apperr.Unauthenticatedf("sign in first")
	}
	out := []*StudentResult{}
	if !v.IsStudent() {
		return out, nil
	}
	copies, err := s.db.Client.ExamCopy.Query().
		Where(examcopy.StatusEQ(examcopy.StatusGRADED),
			examcopy.HasStudentWith(student.UserID(v.UserID)),
			examcopy.HasExamWith(exam.DeletedAtIsNil(), exam.ResultsReleasedAtNotNil())).
		WithExam().WithScores().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	for _, c := range copies {
		ex := c.Edges.Exam
		if ex == nil || ex.ResultsReleasedAt == nil {
			continue
		}
		leaves := ex.Scheme.Leaves()
		sh := sheetOf(c, leaves, ex.Scheme.Max())
		r := &StudentResult{CopyID: c.ID, ExamID: ex.ID, ExamName: ex.Name, ExamDate: ex.Date,
			ReleasedAt: *ex.ResultsReleasedAt, Total: sh.total, MaxPoints: ex.Scheme.Max(), Grade20: sh.grade,
			Appreciation: c.Appreciation, Scores: make([]StudentResultScore, 0, len(leaves))}
		for _, l := range leaves {
			sc := StudentResultScore{QuestionID: l.ID, Label: l.Label, MaxPoints: l.Points}
			if q, ok := sh.scores[l.ID]; ok {
				p := q.Points
				sc.Points, sc.Remark = &p, q.Remark
			}
			r.Scores = append(r.Scores, sc)
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b *StudentResult) int {
		if a.ExamDate != b.ExamDate {
			if a.ExamDate > b.ExamDate {
				return -1
			}
			return 1
		}
		return 0
	})
	return out, nil
}

// sumNull counts the rows of a group where column is NULL.
func sumNull(as, column string) ent.AggregateFunc {
	return func(s *sql.Selector) string {
		return fmt.Sprintf("SUM(CASE WHEN %s IS NULL THEN 1 ELSE 0 END) AS %s", s.C(column), as)
	}
}
