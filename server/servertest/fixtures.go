package servertest

import (
	"fmt"
	"sync/atomic"

	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/grading/scheme"
)

var fixtureSeq atomic.Int64

// DefaultScheme has two leaves: q1 (4 points) and q2a (6 points) under group q2.
func DefaultScheme() scheme.Scheme {
	four, six := 4.0, 6.0
	return scheme.Scheme{
		{ID: "q1", Label: "Exercice 1", Points: &four},
		{ID: "q2", Label: "Exercice 2", Children: []scheme.Node{{ID: "q2a", Label: "Question a", Points: &six}}},
	}
}

// NewExam inserts an exam with DefaultScheme and the given correctors.
func (e *Env) NewExam(correctors ...*ent.User) *ent.Exam {
	e.T.Helper()
	n := fixtureSeq.Add(1)
	ex, err := e.DB.Client.Exam.Create().
		SetName(fmt.Sprintf("Bac blanc %d", n)).SetDate("2026-11-20").SetPagesPerBooklet(4).
		SetScheme(DefaultScheme()).AddCorrectors(correctors...).
		Save(e.Ctx())
	if err != nil {
		e.T.Fatalf("servertest: exam: %v", err)
	}
	return ex
}

// NewStudent inserts a student, optionally linked to a student account.
func (e *Env) NewStudent(account *ent.User) *ent.Student {
	e.T.Helper()
	n := fixtureSeq.Add(1)
	c := e.DB.Client.Student.Create().
		SetLastName(fmt.Sprintf("DUPONT%d", n)).SetFirstName("Élodie").SetBirthDate("2008-03-15").SetClassName("T.02")
	if account != nil {
		c.SetUserID(account.ID)
	}
	s, err := c.Save(e.Ctx())
	if err != nil {
		e.T.Fatalf("servertest: student: %v", err)
	}
	return s
}

// CopyOpts describe a copy fixture.
type CopyOpts struct {
	Corrector *ent.User
	Student   *ent.Student
	Status    examcopy.Status // default READY
	Pages     int             // default 4
}

// NewCopy inserts a copy of ex.
func (e *Env) NewCopy(ex *ent.Exam, o CopyOpts) *ent.ExamCopy {
	e.T.Helper()
	n := fixtureSeq.Add(1)
	if o.Status == "" {
		o.Status = examcopy.StatusREADY
	}
	if o.Pages == 0 {
		o.Pages = 4
	}
	c := e.DB.Client.ExamCopy.Create().
		SetExamID(ex.ID).SetAnonymousID(fmt.Sprintf("%s-%03d", ex.ID[4:8], n)).
		SetStatus(o.Status).SetPageCount(o.Pages)
	if o.Corrector != nil {
		c.SetAssignedCorrectorID(o.Corrector.ID)
	}
	if o.Student != nil {
		c.SetStudentID(o.Student.ID)
	}
	cp, err := c.Save(e.Ctx())
	if err != nil {
		e.T.Fatalf("servertest: copy: %v", err)
	}
	return cp
}
