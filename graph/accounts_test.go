package graph_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/auditlog"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server/servertest"
)

const importAccountsQ = `mutation($file: Upload!, $acc: Boolean){ importStudents(file: $file, createAccounts: $acc){
	created errors { line } accounts { line temporaryPassword student { id lastName } user { id email role } }
	accountErrors { line field message } } }`

type accountsReport struct {
	Created  int
	Accounts []struct {
		Line              int
		TemporaryPassword string
		Student           struct{ ID, LastName string }
		User              struct{ ID, Email, Role string }
	}
	AccountErrors []struct {
		Line           int
		Field, Message string
	}
}

func importWithAccounts(t *testing.T, env *servertest.Env, data []byte, acc bool) accountsReport {
	t.Helper()
	r := officeUpload(t, env, env.Admin(), importAccountsQ, map[string]any{"acc": acc}, "eleves.csv", data)
	if len(r.Errors) > 0 {
		t.Fatalf("importStudents: %+v", r.Errors)
	}
	var out struct{ ImportStudents accountsReport }
	if err := json.Unmarshal(r.Data, &out); err != nil {
		t.Fatal(err)
	}
	return out.ImportStudents
}

// importStudents(createAccounts: true): a STUDENT account per student with an
// e-mail and no account, linked to the student, with a temporary password
// reported once that must be changed before anything else; students left
// without one are reported with their line.
func TestImportStudentsCreatesAccounts(t *testing.T) {
	data, err := os.ReadFile(studentsCSV)
	if err != nil {
		t.Fatal(err)
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		// Without the flag, no account.
		if rep := importWithAccounts(t, env, data, false); rep.Created != 8 || len(rep.Accounts) != 0 || len(rep.AccountErrors) != 0 {
			t.Fatalf("import without accounts: %+v", rep)
		}
		if n := env.DB.Client.User.Query().Where(user.RoleEQ(user.RoleSTUDENT)).CountX(env.Ctx()); n != 0 {
			t.Fatalf("%d student accounts without createAccounts", n)
		}
		// Someone already uses Jean Dupont's address (line 2).
		env.As(env.Admin()).MustDo(`mutation($in: CreateUserInput!){ createUser(input: $in){ id } }`,
			map[string]any{"in": map[string]any{"email": "jean.dupont@eleves.example.org", "name": "Jean Dupont", "role": "TEACHER",
				"password": servertest.Password}}, nil)

		rep := importWithAccounts(t, env, data, true)
		if len(rep.Accounts) != 6 || len(rep.AccountErrors) != 2 {
			t.Fatalf("accounts: %+v", rep)
		}
		refused := map[int]string{}
		for _, e := range rep.AccountErrors {
			refused[e.Line] = e.Message
		}
		if refused[2] == "" || refused[4] == "" { // taken e-mail; Zoé MARTIN has none
			t.Fatalf("account errors: %+v", rep.AccountErrors)
		}
		for _, a := range rep.Accounts {
			st := env.DB.Client.Student.GetX(env.Ctx(), a.Student.ID)
			u := env.DB.Client.User.GetX(env.Ctx(), a.User.ID)
			if st.UserID == nil || *st.UserID != u.ID || u.Role != user.RoleSTUDENT || !u.MustChangePassword ||
				st.Email == nil || u.Email != *st.Email || len(a.TemporaryPassword) < 20 {
				t.Fatalf("account of line %d: student %+v user %+v", a.Line, st, u)
			}
		}
		if n := env.DB.Client.AuditLog.Query().Where(auditlog.Action("USER_CREATED")).CountX(env.Ctx()); n < 7 {
			t.Fatalf("%d USER_CREATED audit rows", n)
		}

		// The temporary password signs in, and must be changed first.
		a := rep.Accounts[0]
		tok := env.Login(a.User.Email, a.TemporaryPassword)
		r := env.As(tok).Do(`{ myResults { examId } }`, nil)
		if env.ErrorCode(r) != "FORBIDDEN" || r.Errors[0].Extensions["reason"] != "PASSWORD_CHANGE_REQUIRED" {
			t.Fatalf("temporary password: %+v", r.Errors)
		}
		env.As(tok).MustDo(`mutation($c: String!, $n: String!){ changePassword(currentPassword: $c, newPassword: $n) }`,
			map[string]any{"c": a.TemporaryPassword, "n": "une phrase de passe bien à moi 2026"}, nil)
		env.As(tok).MustDo(`{ myResults { examId } }`, nil, nil)

		// Importing again creates nothing more: the students have accounts.
		again := importWithAccounts(t, env, data, true)
		if len(again.Accounts) != 0 || len(again.AccountErrors) != 2 {
			t.Fatalf("second import: %+v", again)
		}
		if n := env.DB.Client.User.Query().Where(user.RoleEQ(user.RoleSTUDENT)).CountX(env.Ctx()); n != 6 {
			t.Fatalf("%d student accounts, want 6", n)
		}
		// A teacher cannot.
		_, teacher := env.NewUser(user.RoleTEACHER, "Claire")
		if code := env.ErrorCode(officeUpload(t, env, teacher, importAccountsQ, map[string]any{"acc": true}, "x.csv", data)); code != "FORBIDDEN" {
			t.Fatalf("teacher import with accounts: %s", code)
		}
	})
}
