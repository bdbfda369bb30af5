package graph_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/auditlog"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/gradingevent"
	"github.com/korrigo/korrigo/ent/student"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server/servertest"
)

const studentsCSV = "../testdata/students.csv"

const importStudentsQ = `mutation($file: Upload!){ importStudents(file: $file){ created updated unchanged errors { line field message } } }`

type importReport struct {
	Created, Updated, Unchanged int
	Errors                      []struct {
		Line           int
		Field, Message string
	}
}

// officeUpload sends a GraphQL multipart request with one file as $file.
func officeUpload(t testing.TB, env *servertest.Env, token, query string, vars map[string]any, name string, data []byte) servertest.Response {
	t.Helper()
	return env.As(token).Upload(query, vars, name, data)
}

func importStudents(t testing.TB, env *servertest.Env, data []byte) importReport {
	t.Helper()
	r := officeUpload(t, env, env.Admin(), importStudentsQ, nil, "eleves.csv", data)
	if len(r.Errors) > 0 {
		t.Fatalf("importStudents: %+v", r.Errors)
	}
	var out struct{ ImportStudents importReport }
	if err := json.Unmarshal(r.Data, &out); err != nil {
		t.Fatal(err)
	}
	return out.ImportStudents
}

func findStudent(t testing.TB, env *servertest.Env, last, first string) *ent.Student {
	t.Helper()
	s, err := env.DB.Client.Student.Query().Where(student.LastName(last), student.FirstName(first)).Only(env.Ctx())
	if err != nil {
		t.Fatalf("student %s %s: %v", last, first, err)
	}
	return s
}

func TestImportStudentsFromSchoolCSV(t *testing.T) {
	data, err := os.ReadFile(studentsCSV)
	if err != nil {
		t.Fatal(err)
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		rep := importStudents(t, env, data)
		if rep.Created != 8 || rep.Updated != 0 || len(rep.Errors) != 0 {
			t.Fatalf("first import: %+v", rep)
		}
		s := findStudent(t, env, "BEN ABDESSALEM", "Élyes")
		if s.BirthDate != "2005-11-02" || s.ClassName != "T.02" || s.Group == nil || *s.Group != "G2" ||
			s.Email == nil || *s.Email != "elyes.benabdessalem@eleves.example.org" {
			t.Fatalf("compound surname row: %+v", s)
		}
		findStudent(t, env, "N'DIAYE", "Aïssatou")
		findStudent(t, env, "LEFÈVRE-DURAND", "Maël")
		findStudent(t, env, "NGUYEN", "Thi Minh")
		zoe := findStudent(t, env, "MARTIN", "Zoé") // 29/02/2004: a leap year
		if zoe.BirthDate != "2004-02-29" || zoe.Email != nil || zoe.Group != nil {
			t.Fatalf("empty optional cells: %+v", zoe)
		}
		// The same file again changes nothing.
		if rep := importStudents(t, env, data); rep.Created != 0 || rep.Updated != 0 || rep.Unchanged != 8 {
			t.Fatalf("re-import: %+v", rep)
		}
		n, _ := env.DB.Client.AuditLog.Query().Where(auditlog.Action("STUDENTS_IMPORTED")).Count(env.Ctx())
		if n != 2 {
			t.Fatalf("%d import audit rows", n)
		}
	})
}

func TestImportStudentsBOMSemicolonAndRejectedRows(t *testing.T) {
	// Line numbers are the file's: the header is line 1.
	file := "\xEF\xBB\xBFÉlèves;Né(e) le;Adresse E-mail;Classe;Groupe\r\n" +
		"DUPONT Jean;15/03/2005;jean.dupont@eleves.example.org;T.01;G1\r\n" + // 2: moves to T.01 → updated
		"BEN ABDESSALEM Élyes;02/11/2005;;T.02;\r\n" + // 3: unchanged fields but email/group cleared → updated
		"NOUVEAU Léa;01/02/2006;lea@eleves.example.org;T.04;G3\r\n" + // 4: created
		"dupont jean;15/03/2005;;T.02;\r\n" + // 5: no last name in capitals
		"MARTIN Zoé;29/02/2005;;T.03;\r\n" + // 6: 2005 is not a leap year
		"GARCIA Lucía;2006-01-01;;T.02;\r\n" + // 7: malformed date
		"KANE Awa;03/03/2005;not-an-email;T.02;\r\n" + // 8: bad email
		"DIALLO Fatou;04/04/2005;;;\r\n" + // 9: no class
		"NOUVEAU Léa;01/02/2006;;T.04;\r\n" + // 10: duplicate of line 4
		"ROUSSEAU;05/05/2005;;T.02;\r\n" // 11: no first name
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		data, _ := os.ReadFile(studentsCSV)
		importStudents(t, env, data)
		rep := importStudents(t, env, []byte(file))
		if rep.Created != 1 || rep.Updated != 2 || rep.Unchanged != 0 {
			t.Fatalf("counts: %+v", rep)
		}
		want := map[int]string{5: "Élèves", 6: "Né(e) le", 7: "Né(e) le", 8: "Adresse E-mail", 9: "Classe", 10: "Élèves", 11: "Élèves"}
		got := map[int]string{}
		for _, e := range rep.Errors {
			got[e.Line] = e.Field
			if e.Message == "" {
				t.Errorf("line %d: empty message", e.Line)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || len(rep.Errors) != len(want) {
			t.Fatalf("errors = %+v, want lines/fields %v", rep.Errors, want)
		}
		if s := findStudent(t, env, "DUPONT", "Jean"); s.ClassName != "T.01" {
			t.Fatalf("not updated: %+v", s)
		}
		if s := findStudent(t, env, "BEN ABDESSALEM", "Élyes"); s.Email != nil || s.Group != nil {
			t.Fatalf("empty cells did not clear: %+v", s)
		}
		if n, _ := env.DB.Client.Student.Query().Count(env.Ctx()); n != 9 {
			t.Fatalf("%d students, want 9 (rejected rows written?)", n)
		}

		// Whole-file problems are BAD_USER_INPUT, and write nothing.
		admin := env.Admin()
		for name, body := range map[string]string{
			"missing column": "Élèves;Classe\r\nDURAND Paul;T.01\r\n",
			"latin-1":        "\xc9l\xe8ves;N\xe9(e) le;Classe\r\nDURAND Paul;01/01/2005;T.01\r\n",
		} {
			if code := env.ErrorCode(officeUpload(t, env, admin, importStudentsQ, nil, "x.csv", []byte(body))); code != "BAD_USER_INPUT" {
				t.Errorf("%s: %s", name, code)
			}
		}
		_, teacher := env.NewUser(user.RoleTEACHER, "Claire")
		if code := env.ErrorCode(officeUpload(t, env, teacher, importStudentsQ, nil, "x.csv", []byte(file))); code != "FORBIDDEN" {
			t.Fatalf("teacher import: %s", code)
		}
	})
}

// 5,000 rows in one request, on both databases; the time is logged (go test -v).
func TestImportStudents5000Rows(t *testing.T) {
	var b strings.Builder
	b.WriteString("\xEF\xBB\xBFÉlèves;Né(e) le;Adresse E-mail;Classe;Groupe\r\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "ÉLÈVE%04d DE LA TOUR Zoé-%d;%02d/%02d/2007;e%d@eleves.example.org;T.%02d;G%d\r\n",
			i, i, 1+i%28, 1+i%12, i, i%12, i%3)
	}
	data := []byte(b.String())
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		env.Admin()
		start := time.Now()
		rep := importStudents(t, env, data)
		first := time.Since(start)
		if rep.Created != 5000 || len(rep.Errors) != 0 {
			t.Fatalf("report: created %d, %d errors (%+v)", rep.Created, len(rep.Errors), rep.Errors[:min(3, len(rep.Errors))])
		}
		start = time.Now()
		rep = importStudents(t, env, data)
		again := time.Since(start)
		if rep.Unchanged != 5000 {
			t.Fatalf("re-import: %+v", rep.Unchanged)
		}
		t.Logf("5,000-row import (%d KB): create %v, re-import unchanged %v", len(data)>>10, first.Round(time.Millisecond), again.Round(time.Millisecond))
	})
}

const (
	identifyQ     = `mutation($c: ID!, $s: ID!){ identifyCopy(copyId: $c, studentId: $s){ id status version student { id lastName } } }`
	unidentifyQ   = `mutation($c: ID!){ unidentifyCopy(copyId: $c){ id status student { id } } }`
	suggestQ      = `query($c: ID!, $q: String!){ suggestStudents(copyId: $c, query: $q){ id lastName firstName } }`
	unidentifiedQ = `query($e: ID!){ unidentifiedCopies(examId: $e){ totalCount edges { node { id anonymousId } } } }`
	dispatchQ     = `mutation($e: ID!){ dispatchCopies(examId: $e){ assigned distribution { corrector { id } assigned total } } }`
	reassignQ     = `mutation($c: ID!, $u: ID!){ reassignCopy(copyId: $c, correctorId: $u){ id assignedCorrector { id } } }`
	releaseQ      = `mutation($e: ID!){ releaseResults(examId: $e){ resultsReleasedAt progress { notGraded graded } } }`
	withdrawQ     = `mutation($e: ID!){ withdrawResults(examId: $e){ resultsReleasedAt } }`
	exportQ       = `mutation($e: ID!){ exportGrades(examId: $e, format: PRONOTE){ id } }`
	myResultsQ    = `{ myResults { examId examName grade20 total maxPoints appreciation scores { questionId label points maxPoints remark } } }`
)

func eventCount(t testing.TB, env *servertest.Env, copyID, action string) int {
	t.Helper()
	n, err := env.DB.Client.GradingEvent.Query().Where(gradingevent.CopyID(copyID), gradingevent.Action(action)).Count(env.Ctx())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIdentification(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.As(env.Admin())
		data, _ := os.ReadFile(studentsCSV)
		importStudents(t, env, data)
		ex := env.NewExam()
		staging := env.NewCopy(ex, servertest.CopyOpts{Status: examcopy.StatusSTAGING})
		ready := env.NewCopy(ex, servertest.CopyOpts{})
		graded := env.NewCopy(ex, servertest.CopyOpts{Status: examcopy.StatusGRADED})

		var list struct {
			UnidentifiedCopies struct{ TotalCount int }
		}
		admin.MustDo(unidentifiedQ, map[string]any{"e": ex.ID}, &list)
		if list.UnidentifiedCopies.TotalCount != 3 {
			t.Fatalf("unidentified = %d", list.UnidentifiedCopies.TotalCount)
		}

		// Accent- and case-insensitive, every word must match, in any order.
		suggest := func(q string) []string {
			var out struct {
				SuggestStudents []struct{ LastName, FirstName string }
			}
			admin.MustDo(suggestQ, map[string]any{"c": staging.ID, "q": q}, &out)
			var names []string
			for _, s := range out.SuggestStudents {
				names = append(names, s.LastName+" "+s.FirstName)
			}
			return names
		}
		for q, want := range map[string]string{
			"elyes ben": "[BEN ABDESSALEM Élyes]", "ABDESS": "[BEN ABDESSALEM Élyes]",
			"ndiaye": "[N'DIAYE Aïssatou]", "aïssatou n'diaye": "[N'DIAYE Aïssatou]",
			"LEFEVRE durand": "[LEFÈVRE-DURAND Maël]", "zoe": "[MARTIN Zoé]", "nobody": "[]", "   ": "[]",
		} {
			if got := fmt.Sprint(suggest(q)); got != want {
				t.Errorf("suggest %q = %s, want %s", q, got, want)
			}
		}
		for i := range 15 {
			env.DB.Client.Student.Create().SetLastName("MARTINEZ").SetFirstName(fmt.Sprintf("Paul%02d", i)).
				SetBirthDate("2005-01-01").SetClassName("T.01").SaveX(env.Ctx())
		}
		if got := suggest("martin"); len(got) != 10 {
			t.Fatalf("suggestions capped at 10, got %d", len(got))
		}

		elyes := findStudent(t, env, "BEN ABDESSALEM", "Élyes")
		var id struct {
			IdentifyCopy struct {
				Status  string
				Version int
				Student struct{ LastName string }
			}
		}
		admin.MustDo(identifyQ, map[string]any{"c": staging.ID, "s": elyes.ID}, &id)
		if id.IdentifyCopy.Status != "READY" || id.IdentifyCopy.Student.LastName != "BEN ABDESSALEM" || id.IdentifyCopy.Version != 2 {
			t.Fatalf("identify: %+v", id)
		}
		if eventCount(t, env, staging.ID, "IDENTIFY") != 1 {
			t.Fatal("no IDENTIFY event")
		}
		// One copy per student and exam.
		if code := env.ErrorCode(admin.Do(identifyQ, map[string]any{"c": ready.ID, "s": elyes.ID})); code != "BAD_USER_INPUT" {
			t.Fatalf("second copy for the same student: %s", code)
		}
		if code := env.ErrorCode(admin.Do(identifyQ, map[string]any{"c": graded.ID, "s": elyes.ID})); code != "INVALID_TRANSITION" {
			t.Fatalf("identify a GRADED copy: %s", code)
		}
		if code := env.ErrorCode(admin.Do(unidentifyQ, map[string]any{"c": graded.ID})); code != "INVALID_TRANSITION" {
			t.Fatalf("unidentify a GRADED copy: %s", code)
		}
		if code := env.ErrorCode(admin.Do(identifyQ, map[string]any{"c": ready.ID, "s": "stu_nope"})); code != "NOT_FOUND" {
			t.Fatalf("unknown student: %s", code)
		}
		admin.MustDo(unidentifiedQ, map[string]any{"e": ex.ID}, &list)
		if list.UnidentifiedCopies.TotalCount != 2 {
			t.Fatalf("unidentified after identify = %d", list.UnidentifiedCopies.TotalCount)
		}
		var un struct {
			UnidentifyCopy struct {
				Status  string
				Student *struct{ ID string }
			}
		}
		admin.MustDo(unidentifyQ, map[string]any{"c": staging.ID}, &un)
		if un.UnidentifyCopy.Student != nil || eventCount(t, env, staging.ID, "UNIDENTIFY") != 1 {
			t.Fatalf("unidentify: %+v", un)
		}
		// A student identified on another copy of the exam is suggested last.
		zoe := findStudent(t, env, "MARTIN", "Zoé")
		if got := suggest("martin"); got[0] != "MARTIN Zoé" {
			t.Fatalf("before: %v", got)
		}
		admin.MustDo(identifyQ, map[string]any{"c": ready.ID, "s": zoe.ID}, nil)
		if got := suggest("martin"); len(got) != 10 || slices.Contains(got, "MARTIN Zoé") {
			t.Fatalf("taken student not last: %v", got)
		}
	})
}

// A teacher — even the exam's corrector — gets FORBIDDEN from every
// identification, dispatch, release and export operation, and never sees a
// student's identity through any field of the office API.
func TestTeacherNeverSeesIdentitiesInOffice(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		teacher, tok := env.NewUser(user.RoleTEACHER, "Claire")
		ex := env.NewExam(teacher)
		stu := env.NewStudent(nil)
		cp := env.NewCopy(ex, servertest.CopyOpts{Corrector: teacher, Student: stu, Status: examcopy.StatusGRADED})
		other := env.NewCopy(ex, servertest.CopyOpts{Corrector: teacher})
		as := env.As(tok)
		for name, op := range map[string]struct {
			q string
			v map[string]any
		}{
			"identifyCopy":       {identifyQ, map[string]any{"c": other.ID, "s": stu.ID}},
			"unidentifyCopy":     {unidentifyQ, map[string]any{"c": cp.ID}},
			"unidentifiedCopies": {unidentifiedQ, map[string]any{"e": ex.ID}},
			"suggestStudents":    {suggestQ, map[string]any{"c": other.ID, "q": "dupont"}},
			"dispatchCopies":     {dispatchQ, map[string]any{"e": ex.ID}},
			"reassignCopy":       {reassignQ, map[string]any{"c": other.ID, "u": teacher.ID}},
			"releaseResults":     {releaseQ, map[string]any{"e": ex.ID}},
			"withdrawResults":    {withdrawQ, map[string]any{"e": ex.ID}},
			"exportGrades":       {exportQ, map[string]any{"e": ex.ID}},
		} {
			r := as.Do(op.q, op.v)
			if len(r.Errors) == 0 || r.Errors[0].Code() != "FORBIDDEN" {
				t.Errorf("%s as teacher: %+v", name, r.Errors)
			}
			if strings.Contains(string(r.Data), "DUPONT") {
				t.Errorf("%s leaks the identity: %s", name, r.Data)
			}
		}
		// Reads open to correctors carry no identity.
		r := as.Do(`query($e: ID!){ exam: node(id: $e){ ... on Exam { progress { total unidentified }
			statistics { count questions { questionId } } copies { edges { node { anonymousId student { lastName } } } } } }
			myResults { examName } myCopies { edges { node { id student { lastName } } } } }`, map[string]any{"e": ex.ID})
		if len(r.Errors) > 0 {
			t.Fatalf("corrector reads: %+v", r.Errors)
		}
		if strings.Contains(string(r.Data), "DUPONT") || strings.Contains(string(r.Data), "Élodie") {
			t.Fatalf("identity leaked to a teacher: %s", r.Data)
		}
		if !strings.Contains(string(r.Data), `"myResults":[]`) {
			t.Fatalf("a teacher has results: %s", r.Data)
		}
	})
}

type dispatchOut struct {
	DispatchCopies struct {
		Assigned     int
		Distribution []struct {
			Corrector       struct{ ID string }
			Assigned, Total int
		}
	}
}

func TestDispatchCopies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.As(env.Admin())
		a, _ := env.NewUser(user.RoleTEACHER, "A")
		b, _ := env.NewUser(user.RoleTEACHER, "B")
		c, _ := env.NewUser(user.RoleTEACHER, "C")
		ex := env.NewExam(a, b, c)
		if code := env.ErrorCode(admin.Do(dispatchQ, map[string]any{"e": env.NewExam().ID})); code != "BAD_USER_INPUT" {
			t.Fatalf("dispatch without correctors: %s", code)
		}
		var todo []*ent.ExamCopy
		for range 10 {
			todo = append(todo, env.NewCopy(ex, servertest.CopyOpts{}))
		}
		todo = append(todo, env.NewCopy(ex, servertest.CopyOpts{Status: examcopy.StatusSTAGING}))
		graded := env.NewCopy(ex, servertest.CopyOpts{Status: examcopy.StatusGRADED})
		failed := env.NewCopy(ex, servertest.CopyOpts{Status: examcopy.StatusGRADING_FAILED})
		mine := env.NewCopy(ex, servertest.CopyOpts{Corrector: a})

		var out dispatchOut
		admin.MustDo(dispatchQ, map[string]any{"e": ex.ID}, &out)
		rep := out.DispatchCopies
		if rep.Assigned != 11 || len(rep.Distribution) != 3 {
			t.Fatalf("report: %+v", rep)
		}
		lo, hi := math.MaxInt, 0
		for _, s := range rep.Distribution {
			lo, hi = min(lo, s.Assigned), max(hi, s.Assigned)
			want := s.Assigned
			if s.Corrector.ID == a.ID {
				want++ // the copy assigned before
			}
			if s.Total != want {
				t.Errorf("total of %s = %d, want %d", s.Corrector.ID, s.Total, want)
			}
		}
		if hi-lo > 1 {
			t.Fatalf("unbalanced: %+v", rep.Distribution)
		}
		for _, cp := range todo {
			got := env.DB.Client.ExamCopy.GetX(env.Ctx(), cp.ID)
			if got.AssignedCorrectorID == nil || got.Version != cp.Version+1 || eventCount(t, env, cp.ID, "DISPATCH") != 1 {
				t.Fatalf("copy %s: assigned %v, version %d, events %d", cp.ID, got.AssignedCorrectorID, got.Version, eventCount(t, env, cp.ID, "DISPATCH"))
			}
		}
		for _, cp := range []*ent.ExamCopy{graded, failed} {
			if got := env.DB.Client.ExamCopy.GetX(env.Ctx(), cp.ID); got.AssignedCorrectorID != nil {
				t.Fatalf("%s copy dispatched", cp.Status)
			}
		}
		if got := env.DB.Client.ExamCopy.GetX(env.Ctx(), mine.ID); *got.AssignedCorrectorID != a.ID {
			t.Fatal("an assigned copy was moved")
		}
		admin.MustDo(dispatchQ, map[string]any{"e": ex.ID}, &out)
		if out.DispatchCopies.Assigned != 0 {
			t.Fatalf("second dispatch assigned %d", out.DispatchCopies.Assigned)
		}
	})
}

// Two dispatches racing through the API never assign a copy twice: every copy
// ends with exactly one corrector and one DISPATCH event, and the reports add
// up to the number of copies.
func TestConcurrentDispatch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.As(env.Admin())
		a, _ := env.NewUser(user.RoleTEACHER, "A")
		b, _ := env.NewUser(user.RoleTEACHER, "B")
		c, _ := env.NewUser(user.RoleTEACHER, "C")
		rounds := 20
		for round := range rounds {
			ex := env.NewExam(a, b, c)
			var copies []*ent.ExamCopy
			for range 25 {
				copies = append(copies, env.NewCopy(ex, servertest.CopyOpts{}))
			}
			var (
				wg      sync.WaitGroup
				reports [2]dispatchOut
				errs    [2][]servertest.Error
			)
			for i := range 2 {
				wg.Go(func() {
					r := admin.Do(dispatchQ, map[string]any{"e": ex.ID})
					errs[i] = r.Errors
					_ = json.Unmarshal(r.Data, &reports[i])
				})
			}
			wg.Wait()
			if len(errs[0])+len(errs[1]) > 0 {
				t.Fatalf("round %d: %+v %+v", round, errs[0], errs[1])
			}
			if sum := reports[0].DispatchCopies.Assigned + reports[1].DispatchCopies.Assigned; sum != len(copies) {
				t.Fatalf("round %d: reports assign %d copies, want %d", round, sum, len(copies))
			}
			for i := range 2 {
				lo, hi := math.MaxInt, 0
				for _, s := range reports[i].DispatchCopies.Distribution {
					lo, hi = min(lo, s.Assigned), max(hi, s.Assigned)
				}
				if hi-lo > 1 {
					t.Fatalf("round %d: dispatch %d unbalanced: %+v", round, i, reports[i])
				}
			}
			for _, cp := range copies {
				got := env.DB.Client.ExamCopy.GetX(env.Ctx(), cp.ID)
				if got.AssignedCorrectorID == nil || got.Version != 2 || eventCount(t, env, cp.ID, "DISPATCH") != 1 {
					t.Fatalf("round %d: copy %s assigned %v, version %d, %d events", round, cp.ID,
						got.AssignedCorrectorID, got.Version, eventCount(t, env, cp.ID, "DISPATCH"))
				}
			}
		}
	})
}

func TestReassignCopy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.As(env.Admin())
		a, aTok := env.NewUser(user.RoleTEACHER, "Alice")
		b, bTok := env.NewUser(user.RoleTEACHER, "Bob")
		outsider, _ := env.NewUser(user.RoleTEACHER, "Oscar")
		ex := env.NewExam(a, b)
		cp := env.NewCopy(ex, servertest.CopyOpts{Corrector: a})

		env.As(aTok).MustDo(`mutation($c: ID!){ acquireCopyLock(copyId: $c){ token } }`, map[string]any{"c": cp.ID}, nil)
		r := admin.Do(reassignQ, map[string]any{"c": cp.ID, "u": b.ID})
		if code := env.ErrorCode(r); code != "LOCKED" {
			t.Fatalf("reassign under Alice's lease: %s", code)
		}
		if lock, _ := r.Errors[0].Extensions["lock"].(map[string]any); lock == nil || fmt.Sprint(lock["owner"]) == "" {
			t.Fatalf("LOCKED without the holder: %+v", r.Errors[0].Extensions)
		}
		if code := env.ErrorCode(admin.Do(reassignQ, map[string]any{"c": cp.ID, "u": outsider.ID})); code != "BAD_USER_INPUT" {
			t.Fatalf("reassign to a non-corrector: %s", code)
		}
		admin.MustDo(`mutation($c: ID!){ breakCopyLock(copyId: $c) }`, map[string]any{"c": cp.ID}, nil)
		var out struct {
			ReassignCopy struct{ AssignedCorrector struct{ ID string } }
		}
		admin.MustDo(reassignQ, map[string]any{"c": cp.ID, "u": b.ID}, &out)
		if out.ReassignCopy.AssignedCorrector.ID != b.ID || eventCount(t, env, cp.ID, "REASSIGN") != 1 {
			t.Fatalf("reassign: %+v", out)
		}
		// Bob can now take the lease; Alice no longer sees the copy.
		env.As(bTok).MustDo(`mutation($c: ID!){ acquireCopyLock(copyId: $c){ token } }`, map[string]any{"c": cp.ID}, nil)
		if code := env.ErrorCode(env.As(aTok).Do(`mutation($c: ID!){ acquireCopyLock(copyId: $c){ token } }`, map[string]any{"c": cp.ID})); code != "FORBIDDEN" {
			t.Fatalf("former corrector: %s", code)
		}
		// Bob's own lease does not block giving the copy to Bob (no-op) …
		admin.MustDo(reassignQ, map[string]any{"c": cp.ID, "u": b.ID}, nil)
		// … but blocks giving it back to Alice.
		if code := env.ErrorCode(admin.Do(reassignQ, map[string]any{"c": cp.ID, "u": a.ID})); code != "LOCKED" {
			t.Fatalf("reassign under Bob's lease: %s", code)
		}
		graded := env.NewCopy(ex, servertest.CopyOpts{Corrector: a, Status: examcopy.StatusGRADED})
		if code := env.ErrorCode(admin.Do(reassignQ, map[string]any{"c": graded.ID, "u": b.ID})); code != "INVALID_TRANSITION" {
			t.Fatalf("reassign a GRADED copy: %s", code)
		}
	})
}

// gradedCopy makes a GRADED copy of ex (DefaultScheme: q1 /4, q2a /6) with scores.
func gradedCopy(t testing.TB, env *servertest.Env, ex *ent.Exam, o servertest.CopyOpts, q1, q2a float64, remark string) *ent.ExamCopy {
	t.Helper()
	o.Status = examcopy.StatusGRADED
	cp := env.NewCopy(ex, o)
	env.DB.Client.QuestionScore.Create().SetCopyID(cp.ID).SetQuestionID("q1").SetPoints(q1).SetRemark(remark).SaveX(env.Ctx())
	env.DB.Client.QuestionScore.Create().SetCopyID(cp.ID).SetQuestionID("q2a").SetPoints(q2a).SaveX(env.Ctx())
	env.DB.Client.ExamCopy.UpdateOneID(cp.ID).SetAppreciation("Bon travail").ExecX(env.Ctx())
	return cp
}

func TestReleaseAndMyResults(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.As(env.Admin())
		teacher, teacherTok := env.NewUser(user.RoleTEACHER, "Claire")
		pupil, pupilTok := env.NewUser(user.RoleSTUDENT, "Pupil")
		other, otherTok := env.NewUser(user.RoleSTUDENT, "Other")
		ex := env.NewExam(teacher)
		mine := env.NewStudent(pupil)
		theirs := env.NewStudent(other)
		gradedCopy(t, env, ex, servertest.CopyOpts{Corrector: teacher, Student: mine}, 3, 4.5, "Bien")
		env.NewCopy(ex, servertest.CopyOpts{Corrector: teacher, Student: theirs}) // not graded yet
		env.NewCopy(ex, servertest.CopyOpts{Status: examcopy.StatusSTAGING})

		results := func(tok string) string {
			var out json.RawMessage
			r := env.As(tok).Do(myResultsQ, nil)
			if len(r.Errors) > 0 {
				t.Fatalf("myResults: %+v", r.Errors)
			}
			out = r.Data
			return string(out)
		}
		if got := results(pupilTok); got != `{"myResults":[]}` {
			t.Fatalf("results before release: %s", got)
		}
		if code := env.ErrorCode(env.As(teacherTok).Do(releaseQ, map[string]any{"e": ex.ID})); code != "FORBIDDEN" {
			t.Fatalf("teacher release: %s", code)
		}
		var rel struct {
			ReleaseResults struct {
				ResultsReleasedAt *string
				Progress          struct{ NotGraded, Graded int }
			}
		}
		admin.MustDo(releaseQ, map[string]any{"e": ex.ID}, &rel)
		if rel.ReleaseResults.ResultsReleasedAt == nil || rel.ReleaseResults.Progress.NotGraded != 2 || rel.ReleaseResults.Progress.Graded != 1 {
			t.Fatalf("release: %+v", rel)
		}
		first := *rel.ReleaseResults.ResultsReleasedAt
		admin.MustDo(releaseQ, map[string]any{"e": ex.ID}, &rel)
		if *rel.ReleaseResults.ResultsReleasedAt != first {
			t.Fatal("a second release moved the release time")
		}
		if n, _ := env.DB.Client.AuditLog.Query().Where(auditlog.Action("RESULTS_RELEASED")).Count(env.Ctx()); n != 1 {
			t.Fatalf("%d release audit rows, want 1 (idempotent)", n)
		}

		var res struct {
			MyResults []struct {
				ExamID, ExamName, Appreciation string
				Grade20, Total, MaxPoints      float64
				Scores                         []struct {
					QuestionID, Label, Remark string
					Points                    *float64
					MaxPoints                 float64
				}
			}
		}
		if err := json.Unmarshal([]byte(results(pupilTok)), &res); err != nil {
			t.Fatal(err)
		}
		if len(res.MyResults) != 1 {
			t.Fatalf("results: %+v", res)
		}
		got := res.MyResults[0]
		if got.ExamID != ex.ID || got.Total != 7.5 || got.MaxPoints != 10 || got.Grade20 != 15 || got.Appreciation != "Bon travail" ||
			len(got.Scores) != 2 || got.Scores[0].Label != "Exercice 1" || got.Scores[0].Remark != "Bien" ||
			*got.Scores[1].Points != 4.5 || got.Scores[1].Label != "Exercice 2 › Question a" {
			t.Fatalf("result: %+v", got)
		}
		// The other student's copy is not graded: nothing; and nothing of the pupil's.
		if got := results(otherTok); got != `{"myResults":[]}` {
			t.Fatalf("other student's results: %s", got)
		}
		// The student API cannot reach others' anonymous ids either.
		r := env.As(pupilTok).Do(`{ copies { edges { node { anonymousId } } } }`, nil)
		if n := strings.Count(string(r.Data), "anonymousId"); n > 1 {
			t.Fatalf("student sees %d copies: %s", n, r.Data)
		}

		admin.MustDo(withdrawQ, map[string]any{"e": ex.ID}, nil)
		admin.MustDo(withdrawQ, map[string]any{"e": ex.ID}, nil)
		if got := results(pupilTok); got != `{"myResults":[]}` {
			t.Fatalf("results after withdrawal: %s", got)
		}
		if n, _ := env.DB.Client.AuditLog.Query().Where(auditlog.Action("RESULTS_WITHDRAWN")).Count(env.Ctx()); n != 1 {
			t.Fatalf("%d withdraw audit rows, want 1", n)
		}
	})
}

func TestExamProgressAndStatistics(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.As(env.Admin())
		a, aTok := env.NewUser(user.RoleTEACHER, "Alice")
		b, _ := env.NewUser(user.RoleTEACHER, "Bob")
		_, outsiderTok := env.NewUser(user.RoleTEACHER, "Oscar")
		_, pupilTok := env.NewUser(user.RoleSTUDENT, "Pupil")
		ex := env.NewExam(a, b)
		// Grades /20: (4+6)/10 → 20, (2+3) → 10, (1+0.5) → 3, (3.5+6) → 19.
		gradedCopy(t, env, ex, servertest.CopyOpts{Corrector: a}, 4, 6, "")
		gradedCopy(t, env, ex, servertest.CopyOpts{Corrector: a}, 2, 3, "")
		gradedCopy(t, env, ex, servertest.CopyOpts{Corrector: b}, 1, 0.5, "")
		gradedCopy(t, env, ex, servertest.CopyOpts{Corrector: b}, 3.5, 6, "")
		env.NewCopy(ex, servertest.CopyOpts{Corrector: a, Status: examcopy.StatusGRADING_FAILED})
		env.NewCopy(ex, servertest.CopyOpts{Status: examcopy.StatusSTAGING})

		const q = `query($e: ID!, $mine: Boolean){ node(id: $e){ ... on Exam {
			progress { total staging ready gradingInProgress graded gradingFailed notGraded unassigned unidentified }
			statistics(onlyMine: $mine) { count mean median stdDev min max histogram { from to count }
				questions { questionId label maxPoints mean successRate scored } } } } }`
		type stats struct {
			Node struct {
				Progress   map[string]int
				Statistics struct {
					Count                          int
					Mean, Median, StdDev, Min, Max *float64
					Histogram                      []struct {
						From, To float64
						Count    int
					}
					Questions []struct {
						QuestionID        string
						Mean, SuccessRate *float64
						Scored            int
					}
				}
			}
		}
		var all stats
		admin.MustDo(q, map[string]any{"e": ex.ID}, &all)
		p := all.Node.Progress
		if p["total"] != 6 || p["graded"] != 4 || p["gradingFailed"] != 1 || p["staging"] != 1 || p["notGraded"] != 2 ||
			p["unassigned"] != 1 || p["unidentified"] != 6 {
			t.Fatalf("progress: %v", p)
		}
		s := all.Node.Statistics
		// grades 3, 10, 19, 20: mean 13, median 14.5, population sd sqrt(((10)²+3²+6²+7²)/4) = sqrt(48.5)
		if s.Count != 4 || *s.Mean != 13 || *s.Median != 14.5 || *s.Min != 3 || *s.Max != 20 ||
			math.Abs(*s.StdDev-math.Round(math.Sqrt(48.5)*100)/100) > 1e-9 {
			t.Fatalf("statistics: %+v", s)
		}
		if len(s.Histogram) != 20 || s.Histogram[3].Count != 1 || s.Histogram[10].Count != 1 || s.Histogram[19].Count != 2 {
			t.Fatalf("histogram: %+v", s.Histogram)
		}
		if q1 := s.Questions[0]; q1.QuestionID != "q1" || q1.Scored != 4 || *q1.Mean != 2.63 || *q1.SuccessRate != 0.66 {
			t.Fatalf("q1: %+v (mean 10.5/4, rate 2.625/4)", q1)
		}
		// A corrector sees the whole exam, or only their copies.
		var mine stats
		env.As(aTok).MustDo(q, map[string]any{"e": ex.ID, "mine": true}, &mine)
		if ms := mine.Node.Statistics; ms.Count != 2 || *ms.Mean != 15 {
			t.Fatalf("onlyMine: %+v", ms)
		}
		env.As(aTok).MustDo(q, map[string]any{"e": ex.ID}, &mine)
		if mine.Node.Statistics.Count != 4 {
			t.Fatalf("corrector's whole-exam statistics: %+v", mine.Node.Statistics)
		}
		// Not a corrector: the exam is invisible. A student: no aggregates either.
		r := env.As(outsiderTok).Do(q, map[string]any{"e": ex.ID})
		if strings.Contains(string(r.Data), "count") {
			t.Fatalf("outsider reads statistics: %s", r.Data)
		}
		admin.MustDo(releaseQ, map[string]any{"e": ex.ID}, nil)
		r = env.As(pupilTok).Do(q, map[string]any{"e": ex.ID})
		if strings.Contains(string(r.Data), "count") {
			t.Fatalf("student reads statistics: %s", r.Data)
		}
		// myCopies keeps GRADING_FAILED visible.
		var mc struct {
			MyCopies struct {
				Edges []struct{ Node struct{ Status string } }
			}
		}
		env.As(aTok).MustDo(`{ myCopies { edges { node { status } } } }`, nil, &mc)
		statuses := map[string]int{}
		for _, e := range mc.MyCopies.Edges {
			statuses[e.Node.Status]++
		}
		if statuses["GRADING_FAILED"] != 1 || statuses["GRADED"] != 2 {
			t.Fatalf("myCopies: %v", statuses)
		}
	})
}

// Two copies of one exam identified as the same student at the same time:
// exactly one wins, on both databases.
func TestConcurrentIdentifySameStudent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.As(env.Admin())
		for round := range 10 {
			ex := env.NewExam()
			st := env.NewStudent(nil)
			copies := []*ent.ExamCopy{env.NewCopy(ex, servertest.CopyOpts{}), env.NewCopy(ex, servertest.CopyOpts{})}
			var (
				wg    sync.WaitGroup
				codes [2]string
			)
			for i := range 2 {
				wg.Go(func() {
					r := admin.Do(identifyQ, map[string]any{"c": copies[i].ID, "s": st.ID})
					if len(r.Errors) > 0 {
						codes[i] = r.Errors[0].Code()
					}
				})
			}
			wg.Wait()
			n, _ := env.DB.Client.ExamCopy.Query().Where(examcopy.ExamID(ex.ID), examcopy.StudentID(st.ID)).Count(env.Ctx())
			if n != 1 || (codes[0] == "") == (codes[1] == "") || codes[0]+codes[1] != "BAD_USER_INPUT" {
				t.Fatalf("round %d: %d copies identified, codes %q", round, n, codes)
			}
		}
	})
}
