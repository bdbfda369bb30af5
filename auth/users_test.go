package auth

import (
	"context"
	"database/sql"
	"regexp"
	"sync"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/user"
)

func TestCreateUser(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := WithClientIP(f.adminCtx, "10.0.0.1")
		u, err := f.svc.CreateUser(ctx, CreateUserInput{Email: " Marie.Curie@Lycee-Exemple.fr", Name: " Marie Curie ", Role: user.RoleTEACHER, Password: ptr(teacherPassword)})
		if err != nil {
			t.Fatalf("create user: %v", err)
		}
		if u.Email != teacherEmail || u.Name != "Marie Curie" || u.MustChangePassword || !u.Active {
			t.Fatalf("user = %+v", u)
		}
		var audited bool
		for _, r := range f.audits(ActionUserCreated) {
			if r.Target == u.ID {
				audited = r.ActorID != nil && *r.ActorID == f.admin.ID && r.IP == "10.0.0.1" && r.Metadata["role"] == "TEACHER"
			}
		}
		if !audited {
			t.Fatal("no USER_CREATED audit row by the admin from 10.0.0.1")
		}

		// The same email in another case is a duplicate, reported on the field.
		_, err = f.svc.CreateUser(ctx, CreateUserInput{Email: "MARIE.CURIE@lycee-exemple.fr", Name: "Twin", Role: user.RoleSTUDENT, Password: ptr("another fine passphrase")})
		e := wantCode(t, err, apperr.BadUserInput, "email")
		if e.Message != "a user with this email already exists" {
			t.Fatalf("message = %q", e.Message)
		}

		for _, c := range []struct {
			in    CreateUserInput
			field string
		}{
			{CreateUserInput{Email: "not-an-email", Name: "X", Role: user.RoleTEACHER}, "email"},
			{CreateUserInput{Email: "Name <a@b.fr>", Name: "X", Role: user.RoleTEACHER}, "email"},
			{CreateUserInput{Email: "a@b.fr", Name: "  ", Role: user.RoleTEACHER}, "name"},
			{CreateUserInput{Email: "a@b.fr", Name: "X", Role: "JANITOR"}, "role"},
			{CreateUserInput{Email: "a@b.fr", Name: "X", Role: user.RoleTEACHER, Password: ptr("password1234")}, "password"},
		} {
			_, err := f.svc.CreateUser(ctx, c.in)
			wantCode(t, err, apperr.BadUserInput, c.field)
		}

		// Without a password the account exists but cannot log in yet.
		nopw, err := f.svc.CreateUser(ctx, CreateUserInput{Email: "eleve@lycee-exemple.fr", Name: "Élève", Role: user.RoleSTUDENT})
		if err != nil {
			t.Fatalf("create user without password: %v", err)
		}
		if !nopw.MustChangePassword || !hashRE.MatchString(nopw.PasswordHash) {
			t.Fatalf("user without password: must change %v, hash %q", nopw.MustChangePassword, nopw.PasswordHash)
		}
		_, _, _, err = f.svc.Login(f.ctx, "eleve@lycee-exemple.fr", "", ClientMeta{})
		wantCode(t, err, apperr.Unauthenticated, "")

		// Only admins, from a credential that can write.
		teacherCtx := f.loginCtx(teacherEmail, teacherPassword, "")
		in := CreateUserInput{Email: "new@lycee-exemple.fr", Name: "New", Role: user.RoleADMIN, Password: ptr("a long enough passphrase")}
		_, err = f.svc.CreateUser(teacherCtx, in)
		wantCode(t, err, apperr.Forbidden, "")
		_, err = f.svc.CreateUser(f.ctx, in)
		wantCode(t, err, apperr.Unauthenticated, "")
		readOnly := viewer.NewContext(f.ctx, &viewer.Viewer{UserID: f.admin.ID, Role: viewer.RoleAdmin, TokenID: "tok_x", Scopes: []string{viewer.ScopeRead}})
		_, err = f.svc.CreateUser(readOnly, in)
		wantCode(t, err, apperr.Forbidden, "")
		temp := viewer.NewContext(f.ctx, &viewer.Viewer{UserID: f.admin.ID, Role: viewer.RoleAdmin, SessionID: "ses_x", MustChangePassword: true})
		_, err = f.svc.CreateUser(temp, in)
		if e := wantCode(t, err, apperr.Forbidden, ""); e.Extensions["reason"] != "PASSWORD_CHANGE_REQUIRED" {
			t.Fatalf("reason = %v, want PASSWORD_CHANGE_REQUIRED", e.Extensions["reason"])
		}
		if n, _ := d.Client.User.Query().Where(user.Email("new@lycee-exemple.fr")).Count(rules.System(f.ctx)); n != 0 {
			t.Fatal("a refused createUser created the user")
		}
	})
}

var tempPasswordRE = regexp.MustCompile(`^[2-9a-hjkmnp-z]{5}(-[2-9a-hjkmnp-z]{5}){3}$`)

func TestResetUserPassword(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		teacher := f.createUser(teacherEmail, "Marie Curie", user.RoleTEACHER, teacherPassword)
		old := f.login(teacherEmail, teacherPassword, "")
		teacherCtx := f.authCtx(old)

		_, _, err := f.svc.ResetUserPassword(teacherCtx, f.admin.ID)
		wantCode(t, err, apperr.Forbidden, "")
		_, _, err = f.svc.ResetUserPassword(f.adminCtx, "usr_doesnotexist")
		wantCode(t, err, apperr.NotFound, "")

		temp, u, err := f.svc.ResetUserPassword(f.adminCtx, teacher.ID)
		if err != nil {
			t.Fatalf("reset: %v", err)
		}
		if !tempPasswordRE.MatchString(temp) || CheckPassword(temp, u.Email, u.Name) != nil {
			t.Fatalf("temporary password %q is malformed or fails the policy", temp)
		}
		if !u.MustChangePassword {
			t.Fatal("a reset must force a change")
		}
		_, err = f.svc.Authenticate(f.ctx, old)
		wantCode(t, err, apperr.Unauthenticated, "")
		_, _, _, err = f.svc.Login(f.ctx, teacherEmail, teacherPassword, ClientMeta{})
		wantCode(t, err, apperr.Unauthenticated, "")

		ctx := f.loginCtx(teacherEmail, temp, "")
		if !viewer.FromContext(ctx).MustChangePassword {
			t.Fatal("the viewer of a temporary password must be told to change it")
		}
		if err := f.svc.ChangePassword(ctx, temp, "my own secret phrase"); err != nil {
			t.Fatalf("change the temporary password: %v", err)
		}
		if v := viewer.FromContext(f.loginCtx(teacherEmail, "my own secret phrase", "")); v.MustChangePassword {
			t.Fatal("must_change_password survived the change")
		}
		rows := f.audits(ActionPasswordReset)
		if len(rows) != 1 || rows[0].Target != teacher.ID || rows[0].Metadata["sessionsRevoked"] != float64(1) {
			t.Fatalf("reset audit = %+v", rows)
		}
	})
}

func TestEnsureFirstAdmin(t *testing.T) {
	for _, dia := range dbtest.Dialects() {
		t.Run(dia, func(t *testing.T) {
			// Replicas starting at once: exactly one creates the admin, every round
			// (fewer rounds on PostgreSQL, where each needs a new database).
			rounds := 5
			if dia == dialect.Postgres {
				rounds = 3
			}
			for round := range rounds {
				d := dbtest.Open(t, dia)
				warmPool(t, d, 4)
				clk := newClock()
				var (
					wg      sync.WaitGroup
					mu      sync.Mutex
					created []string
					start   = make(chan struct{})
				)
				for range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						svc := NewService(d.Client, nil, Options{Now: clk.Now, Hash: cheapHash})
						<-start
						ok, email, password, err := svc.EnsureFirstAdmin(context.Background(), "", "")
						if err != nil {
							t.Errorf("round %d: %v", round, err)
							return
						}
						if ok {
							mu.Lock()
							created = append(created, email+" "+password)
							mu.Unlock()
						} else if email != "" || password != "" {
							t.Errorf("round %d: not created but returned %q %q", round, email, password)
						}
					}()
				}
				close(start)
				wg.Wait()
				admins, err := d.Client.User.Query().Where(user.RoleEQ(user.RoleADMIN)).All(rules.System(context.Background()))
				if err != nil {
					t.Fatal(err)
				}
				if len(created) != 1 || len(admins) != 1 {
					t.Fatalf("round %d: %d reported created, %d admins; want 1 and 1", round, len(created), len(admins))
				}
				if admins[0].Email != DefaultAdminEmail || !admins[0].MustChangePassword {
					t.Fatalf("admin = %+v", admins[0])
				}
				if round == 0 {
					f := &fixture{t: t, d: d, clock: clk, ctx: context.Background(),
						svc: NewService(d.Client, nil, Options{Now: clk.Now, Hash: cheapHash})}
					password := created[0][len(DefaultAdminEmail)+1:]
					if !tempPasswordRE.MatchString(password) {
						t.Fatalf("generated password %q", password)
					}
					if v := viewer.FromContext(f.loginCtx(DefaultAdminEmail, password, "")); !v.IsAdmin() || !v.MustChangePassword {
						t.Fatalf("first admin viewer = %+v", v)
					}
					ok, _, _, err := f.svc.EnsureFirstAdmin(f.ctx, "other@x.fr", "")
					if err != nil || ok {
						t.Fatalf("second start: created %v, %v", ok, err)
					}
				}
			}
		})
	}
}

func TestEnsureFirstAdminConfigured(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		svc := NewService(d.Client, nil, Options{Hash: cheapHash})
		ctx := context.Background()
		_, _, _, err := svc.EnsureFirstAdmin(ctx, "boss@lycee-exemple.fr", "qwerty123456")
		wantCode(t, err, apperr.BadUserInput, "password")
		ok, email, password, err := svc.EnsureFirstAdmin(ctx, "Boss@Lycee-Exemple.fr", "configured by the operator")
		if err != nil || !ok || email != "boss@lycee-exemple.fr" || password != "" {
			t.Fatalf("configured admin: %v %q %q %v", ok, email, password, err)
		}
		u, err := d.Client.User.Query().Where(user.Email(email)).Only(rules.System(ctx))
		if err != nil || u.MustChangePassword {
			t.Fatalf("a configured password need not be changed: %+v %v", u, err)
		}
	})
}

// warmPool opens n connections, so that racing goroutines do not get serialized
// by connection setup and really meet at the database.
func warmPool(t *testing.T, d *db.DB, n int) {
	t.Helper()
	var conns []*sql.Conn
	for range n {
		c, err := d.SQL.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.PingContext(context.Background()); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
}
