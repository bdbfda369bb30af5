package auth

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/session"
	"github.com/korrigo/korrigo/ent/user"
)

const (
	teacherEmail    = "marie.curie@lycee-exemple.fr"
	teacherPassword = "radium polonium sorbonne"
)

func TestLogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		teacher := f.createUser(teacherEmail, "Marie Curie", user.RoleTEACHER, teacherPassword)

		tok, sess, u, err := f.svc.Login(f.ctx, "  Marie.CURIE@lycee-exemple.fr ", teacherPassword, ClientMeta{IP: "192.0.2.7", UserAgent: "Firefox"})
		if err != nil {
			t.Fatalf("login with a differently cased email: %v", err)
		}
		if u.ID != teacher.ID || sess.UserID != teacher.ID {
			t.Fatalf("logged in as %s, want %s", u.ID, teacher.ID)
		}
		now := f.clock.Now()
		if !sess.ExpiresAt.Equal(now.Add(4*time.Hour)) || !sess.AbsoluteExpiresAt.Equal(now.Add(12*time.Hour)) {
			t.Fatalf("expiry %v / %v, want now+4h / now+12h", sess.ExpiresAt, sess.AbsoluteExpiresAt)
		}
		if sess.IP != "192.0.2.7" || sess.UserAgent != "Firefox" {
			t.Fatalf("session client = %q %q", sess.IP, sess.UserAgent)
		}
		if strings.Contains(sess.TokenHash, tok) || sess.TokenHash != hashToken(tok) {
			t.Fatal("the session must store the SHA-256 of the token, not the token")
		}
		v, err := f.svc.Authenticate(f.ctx, tok)
		if err != nil {
			t.Fatalf("authenticate: %v", err)
		}
		want := viewer.Viewer{UserID: teacher.ID, Name: "Marie Curie", Role: viewer.RoleTeacher, SessionID: sess.ID}
		if !reflect.DeepEqual(*v, want) {
			t.Fatalf("viewer = %+v, want %+v", *v, want)
		}
		var found bool
		for _, r := range f.audits(ActionLoginSucceeded) {
			if r.Target == teacherEmail {
				found = r.ActorID != nil && *r.ActorID == teacher.ID && r.IP == "192.0.2.7" && r.Metadata["sessionId"] == sess.ID
			}
		}
		if !found {
			t.Fatal("no LOGIN_SUCCEEDED audit row for the teacher's session and IP")
		}

		// Wrong password, unknown email and a deactivated account look the same,
		// and each costs exactly one argon2id computation.
		inactive := f.createUser("old.teacher@lycee-exemple.fr", "Old Teacher", user.RoleTEACHER, "a retired password here")
		if err := d.Client.User.UpdateOne(inactive).SetActive(false).Exec(rules.System(f.ctx)); err != nil {
			t.Fatal(err)
		}
		var errs []*apperr.Error
		for _, c := range []struct{ email, password string }{
			{teacherEmail, "not the right password"},
			{"nobody@lycee-exemple.fr", teacherPassword},
			{"old.teacher@lycee-exemple.fr", "a retired password here"},
		} {
			before := f.svc.hasher.runs.Load()
			_, _, _, err := f.svc.Login(f.ctx, c.email, c.password, ClientMeta{IP: "192.0.2.8"})
			errs = append(errs, wantCode(t, err, apperr.Unauthenticated, ""))
			if n := f.svc.hasher.runs.Load() - before; n != 1 {
				t.Fatalf("login %s ran argon2id %d times, want 1", c.email, n)
			}
		}
		for _, e := range errs[1:] {
			if !reflect.DeepEqual(e, errs[0]) {
				t.Fatalf("failures differ: %+v vs %+v", e, errs[0])
			}
		}
		if errs[0].Message != "invalid email or password" {
			t.Fatalf("message = %q", errs[0].Message)
		}
		failed := f.audits(ActionLoginFailed)
		if len(failed) != 3 {
			t.Fatalf("%d LOGIN_FAILED rows, want 3", len(failed))
		}
		byReason := map[string]int{}
		for _, r := range failed {
			byReason[fmt.Sprint(r.Metadata["reason"])]++
			if r.IP != "192.0.2.8" || r.ActorID != nil {
				t.Fatalf("failure audit = %+v", r)
			}
			if m := fmt.Sprint(r.Metadata); strings.Contains(m, "right password") || strings.Contains(m, "sorbonne") || strings.Contains(m, "retired") {
				t.Fatalf("the audit row carries the password: %+v", r.Metadata)
			}
		}
		if want := map[string]int{"wrong_password": 1, "unknown_email": 1, "inactive": 1}; !reflect.DeepEqual(byReason, want) {
			t.Fatalf("failure reasons = %v, want %v", byReason, want)
		}
	})
}

func TestLockout(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.createUser(teacherEmail, "Marie Curie", user.RoleTEACHER, teacherPassword)
		const attacker, school = "203.0.113.9", "198.51.100.20"

		// Four failures, a success, then five more: the success resets the count.
		for range 4 {
			_, _, _, err := f.svc.Login(f.ctx, teacherEmail, "wrong wrong wrong", ClientMeta{IP: attacker})
			wantCode(t, err, apperr.Unauthenticated, "")
		}
		f.clock.Advance(time.Second)
		f.login(teacherEmail, teacherPassword, attacker)
		start := f.clock.Now()
		for range 5 {
			f.clock.Advance(time.Minute)
			_, _, _, err := f.svc.Login(f.ctx, "MARIE.curie@lycee-exemple.fr", "wrong wrong wrong", ClientMeta{IP: attacker})
			wantCode(t, err, apperr.Unauthenticated, "")
		}

		// Locked for that account and IP, even with the right password, until the
		// oldest of the five failures (start+1m) leaves the 15-minute window.
		f.clock.Advance(time.Minute) // start+6m
		runs := f.svc.hasher.runs.Load()
		_, _, _, err := f.svc.Login(f.ctx, teacherEmail, teacherPassword, ClientMeta{IP: attacker})
		e := wantCode(t, err, apperr.RateLimited, "")
		if got, want := e.Extensions["retryAfter"], int(start.Add(16*time.Minute).Sub(f.clock.Now())/time.Second); got != want {
			t.Fatalf("retryAfter = %v, want %d", got, want)
		}
		if f.svc.hasher.runs.Load() != runs {
			t.Fatal("the password was verified during a lockout")
		}
		if n := len(f.audits(ActionLoginRateLimited)); n != 1 {
			t.Fatalf("%d LOGIN_RATE_LIMITED rows, want 1", n)
		}

		// Another IP (the teacher at school) and another account are unaffected.
		f.login(teacherEmail, teacherPassword, school)
		f.login(adminEmail, adminPassword, attacker)

		// One second before the window frees a slot, still locked; then open.
		f.clock.Advance(start.Add(16*time.Minute - time.Second).Sub(f.clock.Now()))
		_, _, _, err = f.svc.Login(f.ctx, teacherEmail, teacherPassword, ClientMeta{IP: attacker})
		if e := wantCode(t, err, apperr.RateLimited, ""); e.Extensions["retryAfter"] != 1 {
			t.Fatalf("retryAfter = %v, want 1", e.Extensions["retryAfter"])
		}
		f.clock.Advance(time.Second)
		f.login(teacherEmail, teacherPassword, attacker)
	})
}

func TestSessionExpiry(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.createUser(teacherEmail, "Marie Curie", user.RoleTEACHER, teacherPassword)
		sys := rules.System(f.ctx)
		login := f.clock.Now()
		tok := f.login(teacherEmail, teacherPassword, "")
		row := func() (lastSeen, expires time.Time) {
			t.Helper()
			s, err := d.Client.Session.Query().Where(session.TokenHash(hashToken(tok))).Only(sys)
			if err != nil {
				t.Fatal(err)
			}
			return s.LastSeenAt, s.ExpiresAt
		}

		// Within a minute of the last write, use does not write.
		f.clock.Advance(59 * time.Second)
		f.authCtx(tok)
		if seen, exp := row(); !seen.Equal(login) || !exp.Equal(login.Add(4*time.Hour)) {
			t.Fatalf("renewed too early: last seen %v, expires %v", seen, exp)
		}
		// After a minute, it slides.
		f.clock.Advance(time.Second)
		f.authCtx(tok)
		if seen, exp := row(); !seen.Equal(f.clock.Now()) || !exp.Equal(f.clock.Now().Add(4*time.Hour)) {
			t.Fatalf("not renewed: last seen %v, expires %v", seen, exp)
		}

		// Kept alive every 3h59m, it still ends 12h after login: the third
		// renewal (at 11h58m) is capped at the absolute expiry.
		for range 3 {
			f.clock.Advance(3*time.Hour + 59*time.Minute)
			f.authCtx(tok)
		}
		if _, exp := row(); !exp.Equal(login.Add(12 * time.Hour)) {
			t.Fatalf("expires %v, want capped at %v", exp, login.Add(12*time.Hour))
		}
		f.clock.Advance(login.Add(12*time.Hour - time.Second).Sub(f.clock.Now()))
		f.authCtx(tok)
		f.clock.Advance(time.Second)
		_, err := f.svc.Authenticate(f.ctx, tok)
		wantCode(t, err, apperr.Unauthenticated, "")

		// Idle for 4 hours: over.
		idle := f.login(teacherEmail, teacherPassword, "")
		f.clock.Advance(4*time.Hour - time.Second)
		f.authCtx(idle)
		f.clock.Advance(4 * time.Hour)
		_, err = f.svc.Authenticate(f.ctx, idle)
		wantCode(t, err, apperr.Unauthenticated, "")

		for _, junk := range []string{"", "nope", strings.Repeat("x", 500), APITokenPrefix + "nope"} {
			_, err = f.svc.Authenticate(f.ctx, junk)
			wantCode(t, err, apperr.Unauthenticated, "")
		}
	})
}

func TestLogout(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.createUser(teacherEmail, "Marie Curie", user.RoleTEACHER, teacherPassword)
		tok := f.login(teacherEmail, teacherPassword, "")
		other := f.login(teacherEmail, teacherPassword, "")
		ctx := WithClientIP(f.authCtx(tok), "192.0.2.44")
		if err := f.svc.Logout(ctx); err != nil {
			t.Fatalf("logout: %v", err)
		}
		_, err := f.svc.Authenticate(f.ctx, tok)
		wantCode(t, err, apperr.Unauthenticated, "")
		f.authCtx(other) // only that session ended
		if err := f.svc.Logout(ctx); err != nil {
			t.Fatalf("second logout: %v", err)
		}
		rows := f.audits(ActionLogout)
		if len(rows) != 1 || rows[0].IP != "192.0.2.44" {
			t.Fatalf("logout audit = %+v, want one row from 192.0.2.44", rows)
		}
		wantCode(t, f.svc.Logout(f.ctx), apperr.Unauthenticated, "")
	})
}

func TestChangePassword(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		teacher := f.createUser(teacherEmail, "Marie Curie", user.RoleTEACHER, teacherPassword)
		here := f.login(teacherEmail, teacherPassword, "")
		elsewhere := f.login(teacherEmail, teacherPassword, "")
		ctx := f.authCtx(here)

		wantCode(t, f.svc.ChangePassword(ctx, "not my password", "a brand new passphrase"), apperr.BadUserInput, "currentPassword")
		wantCode(t, f.svc.ChangePassword(ctx, teacherPassword, teacherPassword), apperr.BadUserInput, "newPassword")
		wantCode(t, f.svc.ChangePassword(ctx, teacherPassword, "short"), apperr.BadUserInput, "newPassword")
		wantCode(t, f.svc.ChangePassword(ctx, teacherPassword, "curie-was-here-1903"), apperr.BadUserInput, "newPassword")
		f.authCtx(elsewhere) // failed attempts change nothing

		const next = "a brand new passphrase"
		if err := f.svc.ChangePassword(ctx, teacherPassword, next); err != nil {
			t.Fatalf("change password: %v", err)
		}
		f.authCtx(here)
		_, err := f.svc.Authenticate(f.ctx, elsewhere)
		wantCode(t, err, apperr.Unauthenticated, "")
		_, _, _, err = f.svc.Login(f.ctx, teacherEmail, teacherPassword, ClientMeta{})
		wantCode(t, err, apperr.Unauthenticated, "")
		f.login(teacherEmail, next, "")

		rows := f.audits(ActionPasswordChanged)
		if len(rows) != 1 || *rows[0].ActorID != teacher.ID || rows[0].Metadata["sessionsRevoked"] != float64(1) {
			t.Fatalf("audit = %+v", rows)
		}
		if n := len(f.audits(ActionPasswordChangeFailed)); n != 1 {
			t.Fatalf("%d PASSWORD_CHANGE_FAILED rows, want 1", n)
		}
	})
}

func TestLockoutParallelBurst(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.createUser(teacherEmail, "Marie Curie", user.RoleTEACHER, teacherPassword)
		// Ten guesses at once from one IP: only five are verified.
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			codes = map[apperr.Code]int{}
		)
		start := make(chan struct{})
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, _, _, err := f.svc.Login(f.ctx, teacherEmail, "guess guess guess", ClientMeta{IP: "203.0.113.9"})
				mu.Lock()
				codes[apperr.CodeOf(err)]++
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		want := map[apperr.Code]int{apperr.Unauthenticated: 5, apperr.RateLimited: 5}
		if !reflect.DeepEqual(codes, want) {
			t.Fatalf("outcomes = %v, want %v", codes, want)
		}
		if n := len(f.audits(ActionLoginFailed)); n != 5 {
			t.Fatalf("%d LOGIN_FAILED rows, want 5", n)
		}
	})
}
