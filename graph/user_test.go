package graph_test

import (
	"testing"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/auditlog"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server/servertest"
)

func TestLogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		teacher, token := env.NewUser(user.RoleTEACHER, "Hélène")

		var me struct {
			Me struct{ ID, Email, Role string } `json:"me"`
		}
		env.As(token).MustDo(`{ me { id email role } }`, nil, &me)
		if me.Me.ID != teacher.ID || me.Me.Role != "TEACHER" {
			t.Fatalf("me = %+v, want %s TEACHER", me.Me, teacher.ID)
		}

		login := `mutation($e:String!,$p:String!){ login(email:$e, password:$p){ token } }`
		wrongPassword := env.Anonymous().Do(login, map[string]any{"e": teacher.Email, "p": "not the password at all"})
		unknownEmail := env.Anonymous().Do(login, map[string]any{"e": "nobody@school.example", "p": servertest.Password})
		for name, r := range map[string]servertest.Response{"wrong password": wrongPassword, "unknown email": unknownEmail} {
			if code := env.ErrorCode(r); code != "UNAUTHENTICATED" {
				t.Errorf("%s: code %s, want UNAUTHENTICATED", name, code)
			}
		}
		if wrongPassword.Errors[0].Message != unknownEmail.Errors[0].Message {
			t.Errorf("login failures tell accounts apart: %q vs %q", wrongPassword.Errors[0].Message, unknownEmail.Errors[0].Message)
		}
		fails, err := env.DB.Client.AuditLog.Query().Where(auditlog.Action("LOGIN_FAILED")).Count(env.Ctx())
		if err != nil || fails != 2 {
			t.Fatalf("LOGIN_FAILED audit rows = %d, %v; want 2", fails, err)
		}

		// Email is case-insensitive; anonymous me is null; logout ends the session.
		upper := env.Login(teacherEmailUpper(teacher.Email), servertest.Password)
		env.As(upper).MustDo(`mutation { logout }`, nil, nil)
		if r := env.As(upper).Do(`{ me { id } }`, nil); r.Status != 401 || env.ErrorCode(r) != "UNAUTHENTICATED" {
			t.Fatalf("token still works after logout: %d %+v", r.Status, r.Errors)
		}
		var anon struct{ Me *struct{ ID string } }
		env.Anonymous().MustDo(`{ me { id } }`, nil, &anon)
		if anon.Me != nil {
			t.Fatalf("anonymous me = %+v", anon.Me)
		}
	})
}

func teacherEmailUpper(email string) string {
	b := []byte(email)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func TestLoginSetsHttpOnlyCookie(t *testing.T) {
	env := servertest.New(t, dbtest.Open(t, "sqlite3"))
	env.Admin()
	resp := env.PostRaw(`mutation($e:String!,$p:String!){ login(email:$e, password:$p){ token } }`,
		map[string]any{"e": servertest.AdminEmail, "p": servertest.Password})
	var found bool
	for _, c := range resp.Cookies() {
		if c.Name == "korrigo_session" {
			found = true
			if !c.HttpOnly || c.SameSite != 2 /* http.SameSiteLaxMode */ || c.Value == "" {
				t.Fatalf("session cookie flags: %+v", c)
			}
		}
	}
	if !found {
		t.Fatal("login set no session cookie")
	}
}

func TestOnlyAdminsCreateUsers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		_, teacher := env.NewUser(user.RoleTEACHER, "Paul")
		r := env.As(teacher).Do(`mutation { createUser(input:{email:"x@school.example", name:"X", role: ADMIN, password:"a long enough passphrase 7"}){ id } }`, nil)
		if code := env.ErrorCode(r); code != "FORBIDDEN" {
			t.Fatalf("teacher createUser: %s", code)
		}
		if n, _ := env.DB.Client.User.Query().Where(user.Email("x@school.example")).Count(env.Ctx()); n != 0 {
			t.Fatal("the user was created anyway")
		}
		dup := env.As(env.Admin()).Do(`mutation($e:String!){ createUser(input:{email:$e, name:"Again", role: TEACHER, password:"a long enough passphrase 7"}){ id } }`,
			map[string]any{"e": servertest.AdminEmail})
		if code := env.ErrorCode(dup); code != "BAD_USER_INPUT" {
			t.Fatalf("duplicate email: %s (%s)", code, dup.Errors[0].Message)
		}
	})
}

// A temporary password (resetUserPassword, or the generated first admin's) must be
// replaced before the session can do anything but read itself and change it.
func TestTemporaryPasswordMustBeChanged(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.As(env.Admin())
		teacher, _ := env.NewUser(user.RoleTEACHER, "Lucie")
		var reset struct {
			ResetUserPassword struct{ Password string } `json:"resetUserPassword"`
		}
		admin.MustDo(`mutation($u: ID!){ resetUserPassword(userId: $u){ password } }`, map[string]any{"u": teacher.ID}, &reset)
		as := env.As(env.Login(teacher.Email, reset.ResetUserPassword.Password))

		var me struct {
			Me struct{ MustChangePassword bool }
		}
		as.MustDo(`{ me { mustChangePassword } }`, nil, &me)
		if !me.Me.MustChangePassword {
			t.Fatal("a reset account is not flagged mustChangePassword")
		}
		for name, q := range map[string]string{
			"query":    `{ exams { totalCount } }`,
			"mutation": `mutation { createApiToken(input: {name: "x"}) { token } }`,
		} {
			r := as.Do(q, nil)
			if code := env.ErrorCode(r); code != "FORBIDDEN" || r.Errors[0].Extensions["reason"] != "PASSWORD_CHANGE_REQUIRED" {
				t.Fatalf("%s before the change: %s %v", name, code, r.Errors[0].Extensions)
			}
		}
		as.MustDo(`mutation($c: String!){ changePassword(currentPassword: $c, newPassword: "une phrase de passe assez longue 42") }`,
			map[string]any{"c": reset.ResetUserPassword.Password}, nil)
		as.MustDo(`{ exams { totalCount } }`, nil, nil)
	})
}
