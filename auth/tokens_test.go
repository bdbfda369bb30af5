package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/apitoken"
	"github.com/korrigo/korrigo/ent/user"
)

func TestAPITokens(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		sys := rules.System(f.ctx)
		teacher := f.createUser(teacherEmail, "Marie Curie", user.RoleTEACHER, teacherPassword)
		teacherCtx := f.loginCtx(teacherEmail, teacherPassword, "")

		secret, tok, err := f.svc.CreateAPIToken(teacherCtx, " LMS sync ", nil, nil)
		if err != nil {
			t.Fatalf("create token: %v", err)
		}
		if !strings.HasPrefix(secret, APITokenPrefix) || tok.Name != "LMS sync" || tok.OwnerID != teacher.ID ||
			tok.Prefix != secret[:8] || len(tok.Scopes) != 1 || tok.Scopes[0] != viewer.ScopeRead {
			t.Fatalf("token %q = %+v", secret, tok)
		}

		// The secret is stored only as its SHA-256: no column of the row holds it.
		var cols []string
		rows, err := d.SQL.QueryContext(f.ctx, "SELECT id, name, token_hash, prefix, CAST(scopes AS TEXT) FROM api_tokens")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, name, hash, prefix, scopes string
			if err := rows.Scan(&id, &name, &hash, &prefix, &scopes); err != nil {
				t.Fatal(err)
			}
			cols = append(cols, id, name, hash, prefix, scopes)
			if hash != hashToken(secret) {
				t.Fatalf("token_hash = %q, want the SHA-256 hex of the secret", hash)
			}
		}
		rows.Close()
		for _, c := range cols {
			if strings.Contains(c, secret[8:]) {
				t.Fatalf("the secret is stored in clear: %q", c)
			}
		}

		// It authenticates as its owner, read-only.
		v, err := f.svc.Authenticate(f.ctx, secret)
		if err != nil {
			t.Fatalf("authenticate token: %v", err)
		}
		if v.UserID != teacher.ID || v.TokenID != tok.ID || v.SessionID != "" || v.Role != viewer.RoleTeacher || v.CanWrite() {
			t.Fatalf("viewer = %+v, CanWrite %v", v, v.CanWrite())
		}
		lastUsed := func() time.Time {
			t.Helper()
			row, err := d.Client.ApiToken.Get(sys, tok.ID)
			if err != nil || row.LastUsedAt == nil {
				t.Fatalf("last used: %v %v", row, err)
			}
			return *row.LastUsedAt
		}
		first := lastUsed()
		f.clock.Advance(30 * time.Second)
		f.authCtx(secret)
		if !lastUsed().Equal(first) {
			t.Fatal("last_used_at written more than once a minute")
		}
		f.clock.Advance(30 * time.Second)
		f.authCtx(secret)
		if !lastUsed().Equal(f.clock.Now()) {
			t.Fatal("last_used_at not updated after a minute")
		}

		writeSecret, _, err := f.svc.CreateAPIToken(teacherCtx, "grades", []string{"write", "read", "write"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if v := viewer.FromContext(f.authCtx(writeSecret)); !v.CanWrite() || len(v.Scopes) != 2 {
			t.Fatalf("write token viewer = %+v", v)
		}

		// Expired tokens are refused.
		expSecret, _, err := f.svc.CreateAPIToken(teacherCtx, "short-lived", nil, ptr(f.clock.Now().Add(time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		f.authCtx(expSecret)
		f.clock.Advance(time.Hour)
		_, err = f.svc.Authenticate(f.ctx, expSecret)
		wantCode(t, err, apperr.Unauthenticated, "")

		// Revoked tokens are refused; only the owner or an admin may revoke.
		f.createUser("mallory@lycee-exemple.fr", "Mallory", user.RoleTEACHER, "an evil long passphrase")
		malloryCtx := f.loginCtx("mallory@lycee-exemple.fr", "an evil long passphrase", "")
		wantCode(t, f.svc.RevokeAPIToken(malloryCtx, tok.ID), apperr.NotFound, "")
		wantCode(t, f.svc.RevokeAPIToken(teacherCtx, "tok_unknown"), apperr.NotFound, "")
		wantCode(t, f.svc.RevokeAPIToken(f.authCtx(secret), tok.ID), apperr.Forbidden, "") // read-only
		if err := f.svc.RevokeAPIToken(teacherCtx, tok.ID); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		_, err = f.svc.Authenticate(f.ctx, secret)
		wantCode(t, err, apperr.Unauthenticated, "")
		if err := f.svc.RevokeAPIToken(f.adminCtx, tok.ID); err != nil {
			t.Fatalf("revoke twice: %v", err)
		}
		if rows := f.audits(ActionTokenRevoked); len(rows) != 1 || rows[0].Target != tok.ID {
			t.Fatalf("revoke audit = %+v", rows)
		}
		if rows := f.audits(ActionTokenCreated); len(rows) != 3 {
			t.Fatalf("%d TOKEN_CREATED rows, want 3", len(rows))
		}
		malloryTok, mt, err := f.svc.CreateAPIToken(malloryCtx, "mine", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RevokeAPIToken(f.adminCtx, mt.ID); err != nil {
			t.Fatalf("admin revoke: %v", err)
		}
		_, err = f.svc.Authenticate(f.ctx, malloryTok)
		wantCode(t, err, apperr.Unauthenticated, "")

		// A deactivated owner takes the tokens down.
		if err := d.Client.User.UpdateOne(teacher).SetActive(false).Exec(sys); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Authenticate(f.ctx, writeSecret)
		wantCode(t, err, apperr.Unauthenticated, "")

		// Listing: one's own; an admin sees all.
		mine, err := f.svc.APITokens(malloryCtx)
		if err != nil || len(mine) != 1 || mine[0].ID != mt.ID {
			t.Fatalf("mallory's tokens = %v, %v", mine, err)
		}
		all, err := f.svc.APITokens(f.adminCtx)
		if err != nil || len(all) != 4 {
			t.Fatalf("admin sees %d tokens, %v; want 4", len(all), err)
		}
		_, err = f.svc.APITokens(f.ctx)
		wantCode(t, err, apperr.Unauthenticated, "")
	})
}

func TestCreateAPITokenRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.createUser("eleve@lycee-exemple.fr", "Élève", user.RoleSTUDENT, "une phrase assez longue")
		studentCtx := f.loginCtx("eleve@lycee-exemple.fr", "une phrase assez longue", "")
		_, _, err := f.svc.CreateAPIToken(studentCtx, "x", nil, nil)
		wantCode(t, err, apperr.Forbidden, "")
		_, _, err = f.svc.CreateAPIToken(context.Background(), "x", nil, nil)
		wantCode(t, err, apperr.Unauthenticated, "")

		adminSecret, _, err := f.svc.CreateAPIToken(f.adminCtx, "admin", []string{"write"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// A token cannot mint tokens, whatever its scopes.
		_, _, err = f.svc.CreateAPIToken(f.authCtx(adminSecret), "child", nil, nil)
		wantCode(t, err, apperr.Forbidden, "")

		for _, c := range []struct {
			name    string
			scopes  []string
			expires *time.Time
			field   string
		}{
			{"", nil, nil, "name"},
			{strings.Repeat("n", 101), nil, nil, "name"},
			{"x", []string{"admin"}, nil, "scopes"},
			{"x", nil, ptr(f.clock.Now()), "expiresAt"},
			{"x", nil, ptr(f.clock.Now().Add(-time.Hour)), "expiresAt"},
		} {
			_, _, err := f.svc.CreateAPIToken(f.adminCtx, c.name, c.scopes, c.expires)
			wantCode(t, err, apperr.BadUserInput, c.field)
		}
		if n, _ := d.Client.ApiToken.Query().Where(apitoken.NameNEQ("admin")).Count(rules.System(f.ctx)); n != 0 {
			t.Fatalf("%d refused tokens were created", n)
		}
	})
}
