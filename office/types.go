package office

import (
	"time"

	"github.com/korrigo/korrigo/ent"
)

// StudentImportReport is what importStudents answers.
type StudentImportReport struct {
	Created   int
	Updated   int
	Unchanged int
	Errors    []StudentImportError
	// Accounts and AccountErrors are set when accounts were asked for.
	Accounts      []StudentAccount
	AccountErrors []StudentImportError
}

// StudentImportError is one rejected row.
type StudentImportError struct {
	Line    int
	Field   string
	Message string
}

// DispatchReport is what dispatchCopies answers.
type DispatchReport struct {
	Exam         *ent.Exam
	Assigned     int
	Distribution []DispatchShare
}

// DispatchShare is one corrector's part of a dispatch.
type DispatchShare struct {
	Corrector *ent.User
	Assigned  int
	Total     int
}

// ExamProgress counts an exam's copies.
type ExamProgress struct {
	Total             int
	Staging           int
	Ready             int
	GradingInProgress int
	Graded            int
	GradingFailed     int
	NotGraded         int
	Unassigned        int
	Unidentified      int
}

// ExamStatistics summarizes the grades of GRADED copies.
type ExamStatistics struct {
	Count     int
	Mean      *float64
	Median    *float64
	StdDev    *float64
	Min       *float64
	Max       *float64
	Histogram []HistogramBin
	Questions []QuestionStatistics
}

// HistogramBin counts grades in [From, To) (the last bin includes 20).
type HistogramBin struct {
	From  float64
	To    float64
	Count int
}

// QuestionStatistics summarizes one leaf question.
type QuestionStatistics struct {
	QuestionID  string
	Label       string
	MaxPoints   float64
	Mean        *float64
	SuccessRate *float64
	Scored      int
}

// StudentResult is one released, graded copy as its student sees it. CopyID
// is not in the API (the resolver signs the final PDF link with it).
type StudentResult struct {
	CopyID       string
	ExamID       string
	ExamName     string
	ExamDate     string
	ReleasedAt   time.Time
	Total        float64
	MaxPoints    float64
	Grade20      float64
	Appreciation string
	Scores       []StudentResultScore
}

// StudentResultScore is one question of a StudentResult.
type StudentResultScore struct {
	QuestionID string
	Label      string
	Points     *float64
	MaxPoints  float64
	Remark     string
}
