package graph_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/ids"
	"github.com/korrigo/korrigo/server/servertest"
)

// nodeFields reads something of each type nodes(ids) mixes, and an edge of a
// copy, so that eager loading is part of what is compared and counted.
const nodeFields = `__typename id
	... on Copy { anonymousId status exam { id name } }
	... on Exam { name }
	... on User { name }`

// nodeOf is what node(id) answers for one id: its data, the code of an error
// on the node itself, and the errors below it ("exam: NOT_FOUND").
type nodeOf struct {
	data  string
	code  string
	below []string
}

// errorBelow is an error's path under the node, and its code.
func errorBelow(e servertest.Error) string {
	var path []string
	for _, p := range e.Path {
		path = append(path, fmt.Sprint(p))
	}
	return strings.Join(path, ".") + ": " + e.Code()
}

func askNode(t *testing.T, c *servertest.Client, id string) nodeOf {
	t.Helper()
	r := c.Do(`query($id: ID!){ node(id: $id) { `+nodeFields+` } }`, map[string]any{"id": id})
	var data struct{ Node json.RawMessage }
	if err := json.Unmarshal(r.Data, &data); err != nil {
		t.Fatalf("node(%s): %s: %v", id, r.Data, err)
	}
	out := nodeOf{data: string(data.Node)}
	for _, e := range r.Errors {
		if len(e.Path) == 1 {
			out.code = e.Code()
			continue
		}
		e.Path = e.Path[1:]
		out.below = append(out.below, errorBelow(e))
	}
	return out
}

// askNodes returns each entry of nodes(ids) as raw JSON, and the errors.
func askNodes(t *testing.T, c *servertest.Client, list []string) ([]string, []servertest.Error) {
	t.Helper()
	r := c.Do(`query($ids: [ID!]!){ nodes(ids: $ids) { `+nodeFields+` } }`, map[string]any{"ids": list})
	var data struct{ Nodes []json.RawMessage }
	if len(r.Data) > 0 && string(r.Data) != "null" {
		if err := json.Unmarshal(r.Data, &data); err != nil {
			t.Fatalf("nodes: %s: %v", r.Data, err)
		}
	}
	out := make([]string, len(data.Nodes))
	for i, n := range data.Nodes {
		out[i] = string(n)
	}
	return out, r.Errors
}

// nodes(ids) answers, at each position, what node(id) answers for that id:
// a teacher asking for copies they do not correct, exams they do not correct,
// students, an admin-only audit record, a well-formed id of no row, an id of a
// type node cannot read (a session), an unknown prefix and garbage all get a
// null entry, without an error (node(id) gives null and NOT_FOUND for each,
// a list reports none: a hidden object looks like a missing one). An error
// below an entry (a copy assigned to a teacher who does not correct its exam
// has an exam they may not read) is the one node(id) reports, at the entry's
// index. Duplicates come back at each of their positions. Each id alone in
// the list too.
func TestNodesAnswerWhatNodeAnswersForEachID(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		alice, aliceToken := env.NewUser(user.RoleTEACHER, "Alice")
		bob, _ := env.NewUser(user.RoleTEACHER, "Bob")
		pupil, _ := env.NewUser(user.RoleSTUDENT, "Zoe")
		ours, theirs := env.NewExam(alice, bob), env.NewExam(bob)
		student := env.NewStudent(pupil)
		mine := env.NewCopy(ours, servertest.CopyOpts{Corrector: alice, Student: student})
		mine2 := env.NewCopy(ours, servertest.CopyOpts{Corrector: alice})
		bobs := env.NewCopy(ours, servertest.CopyOpts{Corrector: bob, Student: student})
		unassigned := env.NewCopy(ours, servertest.CopyOpts{})
		elsewhere := env.NewCopy(theirs, servertest.CopyOpts{Corrector: alice})
		audit, err := env.DB.Client.AuditLog.Query().First(env.Ctx())
		if err != nil {
			t.Fatalf("an audit record (createUser writes one): %v", err)
		}
		session, err := env.DB.Client.Session.Query().First(env.Ctx())
		if err != nil {
			t.Fatal(err)
		}

		list := []string{
			mine.ID, bobs.ID, ours.ID, unassigned.ID, mine.ID, theirs.ID, elsewhere.ID,
			alice.ID, bob.ID, pupil.ID, student.ID, audit.ID, session.ID,
			ids.New(ids.Copy), ids.New(ids.Exam), "zzz_" + strings.Repeat("0", 26), "1 OR 1=1",
			mine2.ID, ours.ID, bobs.ID, mine2.ID,
		}
		as := env.As(aliceToken)
		got, errs := askNodes(t, as, list)
		if len(got) != len(list) {
			t.Fatalf("nodes returned %d entries for %d ids, errors %+v", len(got), len(list), errs)
		}
		below := map[int][]string{}
		for _, e := range errs {
			i, ok := 0, len(e.Path) > 2
			if ok {
				var f float64
				f, ok = e.Path[1].(float64)
				i = int(f)
			}
			if !ok {
				t.Fatalf("nodes reported an error that is not below an entry: %+v", e)
			}
			e.Path = e.Path[2:]
			below[i] = append(below[i], errorBelow(e))
		}
		visible := 0
		for i, id := range list {
			want := askNode(t, as, id)
			if got[i] != want.data {
				t.Errorf("nodes[%d] (%s) = %s, node(id) = %s", i, id, got[i], want.data)
			}
			if fmt.Sprint(below[i]) != fmt.Sprint(want.below) {
				t.Errorf("nodes[%d] (%s) errors %v, node(id) %v", i, id, below[i], want.below)
			}
			if alone, errs := askNodes(t, as, []string{id}); len(alone) != 1 || alone[0] != want.data || len(errs) != len(want.below) {
				t.Errorf("nodes([%s]) = %q, errors %+v; node(id) = %s, errors below %v", id, alone, errs, want.data, want.below)
			}
			if want.data == "null" {
				if want.code != "NOT_FOUND" && len(want.below) == 0 {
					t.Errorf("node(%s) = null with %q, want NOT_FOUND", id, want.code)
				}
				continue
			}
			visible++
			if !strings.Contains(got[i], `"id":"`+id+`"`) {
				t.Errorf("nodes[%d] = %s, want %s", i, got[i], id)
			}
		}
		// mine twice, ours twice, alice, bob, mine2 twice: the rule let
		// these through and nothing else.
		if visible != 8 {
			t.Errorf("teacher sees %d of the entries, want 8: %q", visible, got)
		}
	})
}

// An admin gets every id of a mixed list back in the order asked, duplicates
// at each of their positions; more than 100 ids are refused as before.
func TestNodesKeepOrderAndDuplicates(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.As(env.Admin())
		exams := []*ent.Exam{env.NewExam(), env.NewExam()}
		var list []string
		for i := range 6 {
			cp := env.NewCopy(exams[i%2], servertest.CopyOpts{})
			list = append(list, cp.ID, exams[(i+1)%2].ID)
		}
		me, err := env.DB.Client.User.Query().Where(user.RoleEQ(user.RoleADMIN)).Only(env.Ctx())
		if err != nil {
			t.Fatal(err)
		}
		// Reversed, interleaved, repeated: no order the database could return.
		for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
			list[i], list[j] = list[j], list[i]
		}
		list = append(list, me.ID, list[0], list[3], me.ID, list[0])
		got, errs := askNodes(t, admin, list)
		if len(errs) != 0 || len(got) != len(list) {
			t.Fatalf("nodes = %d entries, errors %+v; want %d", len(got), errs, len(list))
		}
		for i, id := range list {
			var n struct{ ID string }
			if err := json.Unmarshal([]byte(got[i]), &n); err != nil || n.ID != id {
				t.Errorf("nodes[%d] = %s, want %s", i, got[i], id)
			}
		}

		many := make([]string, 101)
		for i := range many {
			many[i] = list[i%len(list)]
		}
		r := admin.Do(`query($ids: [ID!]!){ nodes(ids: $ids) { id } }`, map[string]any{"ids": many})
		if code := env.ErrorCode(r); code != "BAD_USER_INPUT" {
			t.Fatalf("nodes of 101 ids: %s", code)
		}
		if _, errs := askNodes(t, admin, many[:100]); len(errs) != 0 {
			t.Fatalf("nodes of 100 ids: %+v", errs)
		}
	})
}

// nodes(ids) costs a fixed number of statements whatever the number of ids: the
// ids of one type are read together (one statement, plus one per edge the
// query selects), through the caller's read rules. Mixed copies, exams and
// users, for an admin and for a teacher who sees part of them.
func TestNodesCostFixedStatements(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		alice, aliceToken := env.NewUser(user.RoleTEACHER, "Alice")
		var users []*ent.User
		for i := range 17 {
			role := []user.Role{user.RoleTEACHER, user.RoleSTUDENT}[i%2]
			u, err := env.DB.Client.User.Create().SetEmail(fmt.Sprintf("colleague%d@school.example", i)).
				SetName(fmt.Sprintf("Colleague %d", i)).SetRole(role).SetPasswordHash("-").Save(env.Ctx())
			if err != nil {
				t.Fatal(err)
			}
			users = append(users, u)
		}
		var exams []*ent.Exam
		var copies []*ent.ExamCopy
		for i := range 17 {
			ex := env.NewExam(alice)
			exams = append(exams, ex)
			for j := range 2 {
				corrector := []*ent.User{alice, users[0]}[j]
				copies = append(copies, env.NewCopy(ex, servertest.CopyOpts{Corrector: corrector}))
			}
			if i%4 == 0 { // one exam in four is not alice's
				exams[i] = env.NewExam()
			}
		}
		var list []string
		for i := range 50 {
			switch i % 3 {
			case 0:
				list = append(list, copies[i/3].ID)
			case 1:
				list = append(list, exams[i/3].ID)
			default:
				list = append(list, users[i/3].ID)
			}
		}

		for _, caller := range []struct {
			name, token string
		}{{"admin", env.Admin()}, {"teacher", aliceToken}} {
			c := env.As(caller.token)
			cost := func(n int) (int64, int) {
				t.Helper()
				var got []string
				var errs []servertest.Error
				s := env.Statements.Steady(func() { got, errs = askNodes(t, c, list[:n]) })
				if len(errs) != 0 || len(got) != n {
					t.Fatalf("%s: nodes of %d ids: %d entries, errors %+v", caller.name, n, len(got), errs)
				}
				found := 0
				for _, g := range got {
					if g != "null" {
						found++
					}
				}
				return s, found
			}
			few, fewFound := cost(5)
			many, manyFound := cost(50)
			t.Logf("%s: nodes of 5 ids (%d found): %d statements; of 50 (%d found): %d", caller.name, fewFound, few, manyFound, many)
			if many != few {
				t.Errorf("%s: nodes of 50 ids ran %d statements, of 5 ids %d:\n%s", caller.name, many, few, env.Statements.Log())
			}
			if caller.name == "teacher" && (manyFound == 50 || manyFound == 0) {
				t.Errorf("teacher found %d of 50: the fixture should hide some and show some", manyFound)
			}
		}
	})
}
