package graph_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server/servertest"
)

// gradeFields are the grades an integrator pages through (tools/loadtest, scenario 5).
const gradeFields = `id total grade20 scores { questionId points }`

type graded struct {
	ID      string
	Total   float64
	Grade20 *float64
	Scores  []struct {
		QuestionID string
		Points     float64
	}
}

// gradesFixture: an exam (servertest.DefaultScheme: q1 /4, q2a /6) corrected by
// Alice and Bob; Alice's copies are scored in a pattern (every third one lacks
// q2a, so has no grade20), Bob's all have 1 + 1.
type gradesFixture struct {
	env                  *servertest.Env
	exam                 *ent.Exam
	alice, bob           *ent.User
	aliceToken, bobToken string
	want                 map[string]graded // by copy id: what its reader must get
	aliceIDs, bobIDs     []string
}

func newGradesFixture(t *testing.T, d *db.DB, aliceCopies int) *gradesFixture {
	t.Helper()
	env := servertest.New(t, d)
	f := &gradesFixture{env: env, want: map[string]graded{}}
	f.alice, f.aliceToken = env.NewUser(user.RoleTEACHER, "Alice")
	f.bob, f.bobToken = env.NewUser(user.RoleTEACHER, "Bob")
	f.exam = env.NewExam(f.alice, f.bob)
	score := func(c *ent.ExamCopy, q string, p float64) {
		t.Helper()
		if err := env.DB.Client.QuestionScore.Create().SetCopyID(c.ID).SetQuestionID(q).SetPoints(p).Exec(env.Ctx()); err != nil {
			t.Fatal(err)
		}
	}
	add := func(corrector *ent.User, q1 float64, q2a *float64) string {
		c := env.NewCopy(f.exam, servertest.CopyOpts{Corrector: corrector})
		g := graded{ID: c.ID, Total: q1}
		score(c, "q1", q1)
		g.Scores = append(g.Scores, struct {
			QuestionID string
			Points     float64
		}{"q1", q1})
		if q2a != nil {
			score(c, "q2a", *q2a)
			g.Total += *q2a
			g.Scores = append(g.Scores, struct {
				QuestionID string
				Points     float64
			}{"q2a", *q2a})
			g20 := g.Total * 2 // out of 10
			g.Grade20 = &g20
		}
		f.want[c.ID] = g
		return c.ID
	}
	for i := range aliceCopies {
		var q2a *float64
		if i%3 != 0 {
			q2a = new(float64(i % 7))
		}
		f.aliceIDs = append(f.aliceIDs, add(f.alice, float64(i%5), q2a))
	}
	for range 3 {
		f.bobIDs = append(f.bobIDs, add(f.bob, 1, new(1.0)))
	}
	return f
}

// check compares the copies a caller got with what they must be, and returns
// their ids.
func (f *gradesFixture) check(t *testing.T, what string, got []graded) []string {
	t.Helper()
	var ids []string
	for _, g := range got {
		w, ok := f.want[g.ID]
		if !ok {
			t.Fatalf("%s: unknown copy %s", what, g.ID)
		}
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(w)
		if string(gj) != string(wj) {
			t.Fatalf("%s: copy %s reads %s, want %s", what, g.ID, gj, wj)
		}
		ids = append(ids, g.ID)
	}
	return ids
}

type edgesOf struct {
	Edges []struct{ Node graded }
}

func (e edgesOf) nodes() []graded {
	out := make([]graded, len(e.Edges))
	for i, x := range e.Edges {
		out[i] = x.Node
	}
	return out
}

// A page of copies with their scores, total and grade20 costs the same number
// of SQL statements whatever its size, on every path that lists copies: the
// copies connection, myCopies, an exam's copies.
func TestCopyGradesPageHasNoNPlusOne(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newGradesFixture(t, d, 60)
		env := f.env
		admin := env.As(env.Admin())
		alice := env.As(f.aliceToken)
		paths := []struct {
			name string
			as   *servertest.Client
			page func(n int) []graded
		}{
			{"copies", admin, func(n int) []graded {
				var out struct{ Copies edgesOf }
				admin.MustDo(`query($e: ID!, $n: Int!){ copies(first: $n, where: {hasExamWith: [{id: $e}]}) {
					pageInfo { hasNextPage endCursor } edges { node { `+gradeFields+` } } } }`,
					map[string]any{"e": f.exam.ID, "n": n}, &out)
				return out.Copies.nodes()
			}},
			{"myCopies", alice, func(n int) []graded {
				var out struct{ MyCopies edgesOf }
				alice.MustDo(`query($n: Int!){ myCopies(first: $n) { edges { node { `+gradeFields+` } } } }`,
					map[string]any{"n": n}, &out)
				return out.MyCopies.nodes()
			}},
			{"exam.copies", alice, func(n int) []graded {
				var out struct{ Node struct{ Copies edgesOf } }
				alice.MustDo(`query($e: ID!, $n: Int!){ node(id: $e) { ... on Exam { copies(first: $n) { edges { node { `+gradeFields+` } } } } } }`,
					map[string]any{"e": f.exam.ID, "n": n}, &out)
				return out.Node.Copies.nodes()
			}},
		}
		for _, p := range paths {
			statements := func(n int) int64 {
				return env.Statements.Steady(func() {
					got := p.page(n)
					if len(got) != n {
						t.Fatalf("%s: a page of %d returned %d copies", p.name, n, len(got))
					}
					f.check(t, p.name, got)
				})
			}
			small, large := statements(5), statements(50)
			if large != small {
				t.Fatalf("%s: a page of 50 copies with their grades ran %d statements, a page of 5 ran %d: N+1", p.name, large, small)
			}
			t.Logf("%s: %d statements per page", p.name, large)
		}
	})
}

// The grades on every list path are those of the copies the caller may read:
// a teacher gets their own copies' grades, right, and nothing of a colleague's;
// a student their own released copy.
func TestCopyGradesOnlyOfVisibleCopies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newGradesFixture(t, d, 4)
		env := f.env
		for _, who := range []struct {
			token string
			want  []string
		}{{f.aliceToken, f.aliceIDs}, {f.bobToken, f.bobIDs}} {
			as := env.As(who.token)
			var out struct {
				Copies   edgesOf
				MyCopies edgesOf
				Node     struct{ Copies edgesOf }
			}
			as.MustDo(`query($e: ID!){
				copies(first: 20) { edges { node { `+gradeFields+` } } }
				myCopies(first: 20) { edges { node { `+gradeFields+` } } }
				node(id: $e) { ... on Exam { copies(first: 20) { edges { node { `+gradeFields+` } } } } } }`,
				map[string]any{"e": f.exam.ID}, &out)
			for name, list := range map[string]edgesOf{"copies": out.Copies, "myCopies": out.MyCopies, "exam.copies": out.Node.Copies} {
				ids := f.check(t, name, list.nodes())
				slices.Sort(ids)
				if !slices.Equal(ids, slices.Sorted(slices.Values(who.want))) {
					t.Fatalf("%s: listed %v, want %v", name, ids, who.want)
				}
			}
		}

		// A student: their GRADED copy of the released exam, with its grades.
		account, token := env.NewUser(user.RoleSTUDENT, "Zoe")
		mine := env.NewCopy(f.exam, servertest.CopyOpts{Student: env.NewStudent(account), Status: examcopy.StatusGRADED})
		env.NewCopy(f.exam, servertest.CopyOpts{Student: env.NewStudent(nil), Status: examcopy.StatusGRADED})
		if err := env.DB.Client.QuestionScore.Create().SetCopyID(mine.ID).SetQuestionID("q1").SetPoints(3).Exec(env.Ctx()); err != nil {
			t.Fatal(err)
		}
		if err := env.DB.Client.Exam.UpdateOne(f.exam).SetResultsReleasedAt(time.Now().UTC()).Exec(env.Ctx()); err != nil {
			t.Fatal(err)
		}
		var out struct{ Copies edgesOf }
		env.As(token).MustDo(`{ copies(first: 100) { edges { node { `+gradeFields+` } } } }`, nil, &out)
		got := out.Copies.nodes()
		if len(got) != 1 || got[0].ID != mine.ID || got[0].Total != 3 || got[0].Grade20 != nil ||
			len(got[0].Scores) != 1 || got[0].Scores[0].Points != 3 {
			t.Fatalf("student's copies: %+v, want only %s with q1 = 3", got, mine.ID)
		}
	})
}

// A mutation reads its grades afresh after each of its fields: two scores set in
// one operation each return the total they made (a read cache kept across the
// operation would return the first total twice).
func TestMutationGradesAreNotCached(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newGradesFixture(t, d, 1)
		alice := f.env.As(f.aliceToken)
		c := f.aliceIDs[0]
		token := takeLock(t, alice, c)
		var out struct {
			A, B struct{ Total float64 }
		}
		alice.MustDo(`mutation($c: ID!, $t: String!){
			a: setQuestionScore(copyId: $c, lockToken: $t, questionId: "q1", points: 1) { total }
			b: setQuestionScore(copyId: $c, lockToken: $t, questionId: "q1", points: 3) { total } }`,
			map[string]any{"c": c, "t": token}, &out)
		if out.A.Total != 1 || out.B.Total != 3 {
			t.Fatalf("totals after each score: %v then %v, want 1 then 3", out.A.Total, out.B.Total)
		}
	})
}
