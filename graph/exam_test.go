package graph_test

import (
	"strings"
	"testing"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server/servertest"
)

const createExam = `mutation($in: CreateExamInput!){ createExam(input: $in){ id name date pagesPerBooklet maxPoints } }`

func TestExamLifecycle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.As(env.Admin())
		teacher, teacherToken := env.NewUser(user.RoleTEACHER, "Claire")
		pupil, _ := env.NewUser(user.RoleSTUDENT, "Pupil")

		r := env.As(teacherToken).Do(createExam, map[string]any{"in": map[string]any{"name": "DS 1", "date": "2026-11-20", "pagesPerBooklet": 4}})
		if code := env.ErrorCode(r); code != "FORBIDDEN" {
			t.Fatalf("teacher createExam: %s", code)
		}
		for name, in := range map[string]map[string]any{
			"bad date":  {"name": "DS", "date": "20/11/2026", "pagesPerBooklet": 4},
			"no pages":  {"name": "DS", "date": "2026-11-20", "pagesPerBooklet": 0},
			"no name":   {"name": "  ", "date": "2026-11-20", "pagesPerBooklet": 4},
			"bad month": {"name": "DS", "date": "2026-13-01", "pagesPerBooklet": 4},
		} {
			if code := env.ErrorCode(admin.Do(createExam, map[string]any{"in": in})); code != "BAD_USER_INPUT" {
				t.Errorf("%s: %s", name, code)
			}
		}
		if n, _ := env.DB.Client.Exam.Query().Count(env.Ctx()); n != 0 {
			t.Fatalf("%d exams written by refused requests", n)
		}

		var made struct{ CreateExam struct{ ID string } }
		admin.MustDo(createExam, map[string]any{"in": map[string]any{"name": "Bac blanc", "date": "2026-11-20", "pagesPerBooklet": 4}}, &made)
		id := made.CreateExam.ID

		setScheme := `mutation($id: ID!, $s: [SchemeNodeInput!]!){ setGradingScheme(examId: $id, scheme: $s){ maxPoints scheme { id children { id points } } } }`
		bad := []any{map[string]any{"id": "q1", "label": "Q1", "points": 2}, map[string]any{"id": "q1", "label": "Q1 bis", "points": 3}}
		if code := env.ErrorCode(admin.Do(setScheme, map[string]any{"id": id, "s": bad})); code != "BAD_USER_INPUT" {
			t.Fatalf("duplicate question ids: %s", code)
		}
		good := []any{
			map[string]any{"id": "ex1", "label": "Exercice 1", "children": []any{
				map[string]any{"id": "ex1a", "label": "a", "points": 2.5},
				map[string]any{"id": "ex1b", "label": "b", "points": 3.5}}},
			map[string]any{"id": "ex2", "label": "Exercice 2", "points": 4},
		}
		var sch struct{ SetGradingScheme struct{ MaxPoints float64 } }
		admin.MustDo(setScheme, map[string]any{"id": id, "s": good}, &sch)
		if sch.SetGradingScheme.MaxPoints != 10 {
			t.Fatalf("maxPoints = %v", sch.SetGradingScheme.MaxPoints)
		}

		setCorrectors := `mutation($id: ID!, $u: [ID!]!){ setExamCorrectors(examId: $id, userIds: $u){ correctors { totalCount } } }`
		if code := env.ErrorCode(admin.Do(setCorrectors, map[string]any{"id": id, "u": []string{teacher.ID, pupil.ID}})); code != "BAD_USER_INPUT" {
			t.Fatalf("a student as corrector: %s", code)
		}
		admin.MustDo(setCorrectors, map[string]any{"id": id, "u": []string{teacher.ID}}, nil)
		teacherExams := func() int {
			var out struct{ Exams struct{ TotalCount int } }
			env.As(teacherToken).MustDo(`{ exams { totalCount } }`, nil, &out)
			return out.Exams.TotalCount
		}
		if n := teacherExams(); n != 1 {
			t.Fatalf("corrector sees %d exams", n)
		}

		// Soft delete: hidden from the teacher, kept in the database, restorable.
		exam, _ := env.DB.Client.Exam.Get(env.Ctx(), id)
		env.NewCopy(exam, servertest.CopyOpts{Corrector: teacher, Status: examcopy.StatusGRADED})
		admin.MustDo(`mutation($id: ID!){ deleteExam(id: $id){ deletedAt } }`, map[string]any{"id": id}, nil)
		if n := teacherExams(); n != 0 {
			t.Fatalf("deleted exam still visible to the corrector")
		}
		if _, err := env.DB.Client.Exam.Get(env.Ctx(), id); err != nil {
			t.Fatalf("soft-deleted exam is gone from the database: %v", err)
		}
		admin.MustDo(`mutation($id: ID!){ restoreExam(id: $id){ deletedAt } }`, map[string]any{"id": id}, nil)
		if n := teacherExams(); n != 1 {
			t.Fatalf("restored exam not visible")
		}
		// An exam with copies can never be removed from the database.
		if err := env.DB.Client.Exam.DeleteOneID(id).Exec(env.Ctx()); err == nil {
			t.Fatal("the database removed an exam that has copies")
		}
		// The scheme is frozen once a copy is finalized.
		if code := env.ErrorCode(admin.Do(setScheme, map[string]any{"id": id, "s": good})); code != "INVALID_TRANSITION" {
			t.Fatalf("scheme changed after finalization: %s", code)
		}
	})
}

// An internal error (here a missing table) reaches the client as a masked
// INTERNAL_SERVER_ERROR with a request id: no SQL, no table name.
func TestErrorPresenterMasksInternalErrors(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.As(env.Admin())
		if _, err := d.SQL.Exec(`DROP TABLE grading_events`); err != nil {
			t.Fatal(err)
		}
		r := admin.Do(`{ gradingEvents { totalCount } }`, nil)
		if code := env.ErrorCode(r); code != "INTERNAL_SERVER_ERROR" {
			t.Fatalf("code %s: %+v", code, r.Errors)
		}
		e := r.Errors[0]
		for _, leak := range []string{"grading_events", "SELECT", "sql", "table"} {
			if strings.Contains(strings.ToLower(e.Message), strings.ToLower(leak)) {
				t.Fatalf("error message leaks %q: %q", leak, e.Message)
			}
		}
		if id, _ := e.Extensions["requestId"].(string); id == "" {
			t.Fatalf("no request id in %+v", e.Extensions)
		}
	})
}

// Malformed input is BAD_USER_INPUT, never an internal error.
func TestMalformedInputIsTyped(t *testing.T) {
	env := servertest.New(t, dbtest.Open(t, "sqlite3"))
	admin := env.As(env.Admin())
	for name, q := range map[string]string{
		"syntax":        `{ exams { `,
		"unknown field": `{ exams { nope } }`,
		"bad cursor":    `{ exams(after: "!!!") { totalCount } }`,
		"bad id":        `{ node(id: "'; DROP TABLE users; --") { id } }`,
	} {
		r := admin.Do(q, nil)
		if len(r.Errors) == 0 {
			t.Errorf("%s: no error", name)
			continue
		}
		if code := r.Errors[0].Code(); code != "BAD_USER_INPUT" && code != "NOT_FOUND" {
			t.Errorf("%s: code %s (%s)", name, code, r.Errors[0].Message)
		}
	}
	// A page size over 100 is refused before execution (DESIGN.md §11 limits).
	if r := admin.Do(`{ exams(first: 1000) { totalCount } }`, nil); len(r.Errors) != 1 || r.Errors[0].Code() != "QUERY_TOO_COMPLEX" {
		t.Errorf("page too big: %+v", r.Errors)
	}
}
