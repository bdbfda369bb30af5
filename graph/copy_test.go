package graph_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server/servertest"
)

// A teacher reads only the copies assigned to them, never a student's identity,
// whatever the path: list, node, nodes, nested edges.
func TestTeacherSeesOnlyAssignedCopiesAndNoIdentity(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		alice, aliceToken := env.NewUser(user.RoleTEACHER, "Alice")
		bob, _ := env.NewUser(user.RoleTEACHER, "Bob")
		ex := env.NewExam(alice, bob)
		student := env.NewStudent(nil)
		mine := env.NewCopy(ex, servertest.CopyOpts{Corrector: alice, Student: student})
		theirs := env.NewCopy(ex, servertest.CopyOpts{Corrector: bob, Student: student})
		as := env.As(aliceToken)

		var list struct {
			Copies struct {
				TotalCount int
				Edges      []struct {
					Node struct {
						ID      string
						Student *struct{ LastName string }
					}
				}
			}
		}
		as.MustDo(`{ copies { totalCount edges { node { id student { lastName } } } } }`, nil, &list)
		if list.Copies.TotalCount != 1 || len(list.Copies.Edges) != 1 || list.Copies.Edges[0].Node.ID != mine.ID {
			t.Fatalf("teacher's copies = %+v, want only %s", list.Copies, mine.ID)
		}
		if list.Copies.Edges[0].Node.Student != nil {
			t.Fatalf("teacher sees the student of their own copy: %+v", list.Copies.Edges[0].Node.Student)
		}

		r := as.Do(`query($id: ID!){ node(id: $id) { id ... on Copy { anonymousId } } }`, map[string]any{"id": theirs.ID})
		if code := env.ErrorCode(r); code != "NOT_FOUND" {
			t.Fatalf("node(other copy) = %s %s", code, r.Data)
		}
		r = as.Do(`query($id: ID!){ node(id: $id) { id } }`, map[string]any{"id": student.ID})
		if code := env.ErrorCode(r); code != "NOT_FOUND" {
			t.Fatalf("node(student) = %s %s", code, r.Data)
		}
		var nodes struct{ Nodes []*struct{ ID string } }
		as.MustDo(`query($ids: [ID!]!){ nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{mine.ID, theirs.ID, student.ID}}, &nodes)
		if len(nodes.Nodes) != 3 || nodes.Nodes[0] == nil || nodes.Nodes[1] != nil || nodes.Nodes[2] != nil {
			t.Fatalf("nodes = %+v", nodes.Nodes)
		}
		var students struct{ Students struct{ TotalCount int } }
		as.MustDo(`{ students { totalCount } }`, nil, &students)
		if students.Students.TotalCount != 0 {
			t.Fatalf("teacher lists %d students", students.Students.TotalCount)
		}
		// Through the exam's copies edge too.
		var viaExam struct {
			Node struct{ Copies struct{ TotalCount int } }
		}
		as.MustDo(`query($id: ID!){ node(id: $id) { ... on Exam { copies { totalCount } } } }`, map[string]any{"id": ex.ID}, &viaExam)
		if viaExam.Node.Copies.TotalCount != 1 {
			t.Fatalf("exam.copies for teacher = %d, want 1", viaExam.Node.Copies.TotalCount)
		}

		// The admin sees both copies and the identity.
		var admin struct {
			Node struct{ Student *struct{ LastName string } }
		}
		env.As(env.Admin()).MustDo(`query($id: ID!){ node(id: $id) { ... on Copy { student { lastName } } } }`, map[string]any{"id": theirs.ID}, &admin)
		if admin.Node.Student == nil || admin.Node.Student.LastName != student.LastName {
			t.Fatalf("admin does not see the identity: %+v", admin.Node.Student)
		}
	})
}

// A student sees only their own graded copies of released exams.
func TestStudentSeesOnlyOwnReleasedCopies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		meAccount, meToken := env.NewUser(user.RoleSTUDENT, "Zoe")
		otherAccount, _ := env.NewUser(user.RoleSTUDENT, "Yanis")
		me, other := env.NewStudent(meAccount), env.NewStudent(otherAccount)
		ex := env.NewExam()
		mine := env.NewCopy(ex, servertest.CopyOpts{Student: me, Status: examcopy.StatusGRADED})
		theirs := env.NewCopy(ex, servertest.CopyOpts{Student: other, Status: examcopy.StatusGRADED})
		as := env.As(meToken)
		count := func() int {
			var out struct{ Copies struct{ TotalCount int } }
			as.MustDo(`{ copies { totalCount } }`, nil, &out)
			return out.Copies.TotalCount
		}
		if n := count(); n != 0 {
			t.Fatalf("before release the student sees %d copies", n)
		}
		if err := env.DB.Client.Exam.UpdateOne(ex).SetResultsReleasedAt(time.Now().UTC()).Exec(env.Ctx()); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 1 {
			t.Fatalf("after release the student sees %d copies, want 1", n)
		}
		for _, id := range []string{theirs.ID, other.ID, otherAccount.ID} {
			r := as.Do(`query($id: ID!){ node(id: $id) { id } }`, map[string]any{"id": id})
			if code := env.ErrorCode(r); code != "NOT_FOUND" {
				t.Fatalf("student reads %s: %s", id, code)
			}
		}
		var own struct{ Node struct{ ID string } }
		as.MustDo(`query($id: ID!){ node(id: $id) { id } }`, map[string]any{"id": mine.ID}, &own)
		if own.Node.ID != mine.ID {
			t.Fatalf("student cannot read own copy: %+v", own)
		}
	})
}

// Paging 50 copies with their exam and corrector costs a fixed number of SQL
// statements, whatever the page size (entgql eager loading, no N+1).
func TestCopiesPageHasNoNPlusOne(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.Admin()
		var teachers []*ent.User
		for i := range 5 {
			u, _ := env.NewUser(user.RoleTEACHER, fmt.Sprintf("Corrector%d", i))
			teachers = append(teachers, u)
		}
		ex := env.NewExam(teachers...)
		for i := range 60 {
			env.NewCopy(ex, servertest.CopyOpts{Corrector: teachers[i%len(teachers)]})
		}
		q := `query($n: Int!){ copies(first: $n) { edges { node { id anonymousId exam { id name } assignedCorrector { id name } } } } }`
		statements := func(n int) int64 {
			return env.Statements.Steady(func() {
				var out struct {
					Copies struct{ Edges []json.RawMessage }
				}
				env.As(admin).MustDo(q, map[string]any{"n": n}, &out)
				if len(out.Copies.Edges) != n {
					t.Fatalf("page of %d returned %d copies", n, len(out.Copies.Edges))
				}
			})
		}
		small, large := statements(5), statements(50)
		if large != small {
			t.Fatalf("a page of 50 copies ran %d statements, a page of 5 ran %d: N+1", large, small)
		}
	})
}
