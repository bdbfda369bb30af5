package auth

import (
	"context"
	"slices"
	"testing"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/user"
)

// Options.CredentialsChanged is told, with the owner's id, of every logout,
// password change that ended other sessions, password reset that ended
// sessions and API token revocation; only once the change is committed (what
// it tells is already what another connection reads), and never for an
// operation that ended nothing or failed.
func TestCredentialsChangedHook(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		sys := rules.System(f.ctx)
		type call struct {
			userID    string
			committed bool
		}
		var calls []call
		var ended func() bool // reads, outside any transaction, whether the step's credential ended
		f.svc.opts.CredentialsChanged = func(_ context.Context, userID string) {
			calls = append(calls, call{userID, ended()})
		}
		sessionEnded := func(credential string) func() bool {
			id := viewer.FromContext(f.authCtx(credential)).SessionID
			return func() bool {
				s, err := d.Client.Session.Get(sys, id)
				if err != nil {
					t.Errorf("read session: %v", err)
					return false
				}
				return s.RevokedAt != nil
			}
		}
		step := func(what string, want []call, op func() error) {
			t.Helper()
			calls = nil
			if err := op(); err != nil && want != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if !slices.Equal(calls, want) {
				t.Fatalf("%s: hook calls %+v, want %+v", what, calls, want)
			}
		}

		teacher := f.createUser(teacherEmail, "Marie Curie", user.RoleTEACHER, teacherPassword)
		here := f.login(teacherEmail, teacherPassword, "")
		elsewhere := f.login(teacherEmail, teacherPassword, "")
		gone := f.login(teacherEmail, teacherPassword, "")
		hereCtx := f.authCtx(here)
		done := []call{{teacher.ID, true}}

		// Revoked by the admin: the hook names the token's owner.
		_, tok, err := f.svc.CreateAPIToken(hereCtx, "LMS sync", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ended = func() bool {
			row, err := d.Client.ApiToken.Get(sys, tok.ID)
			if err != nil {
				t.Errorf("read token: %v", err)
				return false
			}
			return row.RevokedAt != nil
		}
		step("revoke token", done, func() error { return f.svc.RevokeAPIToken(f.adminCtx, tok.ID) })
		step("revoke token again", []call{}, func() error { return f.svc.RevokeAPIToken(f.adminCtx, tok.ID) })

		goneCtx := f.authCtx(gone)
		ended = sessionEnded(gone)
		step("logout", done, func() error { return f.svc.Logout(goneCtx) })
		step("logout again", []call{}, func() error { return f.svc.Logout(goneCtx) })

		ended = sessionEnded(elsewhere)
		step("wrong current password", nil, func() error {
			return f.svc.ChangePassword(hereCtx, "not my password", "a brand new passphrase")
		})
		step("change password", done, func() error {
			return f.svc.ChangePassword(hereCtx, teacherPassword, "a brand new passphrase")
		})
		step("change password, no other session", []call{}, func() error {
			return f.svc.ChangePassword(hereCtx, "a brand new passphrase", "yet another passphrase")
		})

		ended = sessionEnded(here)
		step("reset password", done, func() error {
			_, _, err := f.svc.ResetUserPassword(f.adminCtx, teacher.ID)
			return err
		})
		step("reset password, no session left", []call{}, func() error {
			_, _, err := f.svc.ResetUserPassword(f.adminCtx, teacher.ID)
			return err
		})
	})
}
