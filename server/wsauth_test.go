package server_test

import (
	"testing"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server/servertest"
)

// noPeriodicCheck leaves only the hints to close sockets within a test: the
// periodic re-check would not run before wsWait gives up.
var noPeriodicCheck = map[string]string{"KORRIGO_WS_AUTH_INTERVAL": "1h"}

// openLocks opens a socket authenticated by token and following ex's locks.
func openLocks(t *testing.T, e *servertest.Env, token, examID string) *wsConn {
	t.Helper()
	c := mustDial(t, e, dialOpts{})
	c.init(bearer(token))
	id := c.subscribe(subLocks, map[string]any{"e": examID})
	if s := nextLock(t, c, id); s.Kind != "SNAPSHOT" {
		t.Fatalf("want SNAPSHOT, got %+v", s)
	}
	return c
}

// stillOpen fails unless the socket still serves a new subscription.
func stillOpen(t *testing.T, c *wsConn, what, examID string) {
	t.Helper()
	id := c.subscribe(subLocks, map[string]any{"e": examID})
	if s := nextLock(t, c, id); s.Kind != "SNAPSHOT" {
		t.Fatalf("%s: want SNAPSHOT, got %+v", what, s)
	}
}

// Ending a credential closes its sockets with 4403 as soon as it is
// committed, not at the next periodic re-check (an hour away here): logout,
// a password change (the other sessions), a password reset by an admin, an
// API token revocation. Sockets whose credential is still valid, of the same
// user or another, stay open.
func TestWebsocketClosedWhenCredentialRevoked(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newInstance(t, d, "", noPeriodicCheck)
		admin := e.Admin()
		marie, loggedOut := e.NewUser(user.RoleTEACHER, "Marie")
		paul, paulToken := e.NewUser(user.RoleTEACHER, "Paul")
		ex := e.NewExam(marie, paul)
		other := e.Login(marie.Email, servertest.Password)  // loses to the password change
		keeper := e.Login(marie.Email, servertest.Password) // changes the password
		var tok struct {
			CreateApiToken struct {
				Token    string
				APIToken struct{ ID string } `json:"apiToken"`
			}
		}
		e.As(keeper).MustDo(`mutation { createApiToken(input: {name: "sync", scopes: ["read"]}) { token apiToken { id } } }`,
			nil, &tok)

		cLogout, cOther, cToken, cKeeper := openLocks(t, e, loggedOut, ex.ID), openLocks(t, e, other, ex.ID),
			openLocks(t, e, tok.CreateApiToken.Token, ex.ID), openLocks(t, e, keeper, ex.ID)
		cPaul, cAdmin := openLocks(t, e, paulToken, ex.ID), openLocks(t, e, admin, ex.ID)

		e.As(loggedOut).MustDo(`mutation { logout }`, nil, nil)
		if code := cLogout.closeCode(); code != 4403 {
			t.Fatalf("logout: want 4403, got %d", code)
		}
		e.As(keeper).MustDo(`mutation($id: ID!){ revokeApiToken(id: $id) }`,
			map[string]any{"id": tok.CreateApiToken.APIToken.ID}, nil)
		if code := cToken.closeCode(); code != 4403 {
			t.Fatalf("token revoked: want 4403, got %d", code)
		}
		e.As(keeper).MustDo(`mutation($c: String!, $n: String!){ changePassword(currentPassword: $c, newPassword: $n) }`,
			map[string]any{"c": servertest.Password, "n": "an entirely new passphrase 1984"}, nil)
		if code := cOther.closeCode(); code != 4403 {
			t.Fatalf("password change: want 4403, got %d", code)
		}
		e.As(admin).MustDo(`mutation($u: ID!){ resetUserPassword(userId: $u){ password } }`,
			map[string]any{"u": paul.ID}, nil)
		if code := cPaul.closeCode(); code != 4403 {
			t.Fatalf("password reset: want 4403, got %d", code)
		}
		// Each hint above had the keeper's socket checked too (same user).
		stillOpen(t, cKeeper, "the session that changed the password", ex.ID)
		stillOpen(t, cAdmin, "another user's session", ex.ID)
	})
}

// Replicas share their hints through the broker: a logout through B closes
// the socket of that session on A at once, the other session's socket on A
// stays open.
func TestWebsocketClosedWhenCredentialRevokedOnAnotherInstance(t *testing.T) {
	redisURL := testRedisURL(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newInstance(t, d, redisURL, noPeriodicCheck)
		b := newInstance(t, d, redisURL, noPeriodicCheck)
		marie, loggedOut := a.NewUser(user.RoleTEACHER, "Marie")
		ex := a.NewExam(marie)
		kept := a.Login(marie.Email, servertest.Password)
		cLogout, cKept := openLocks(t, a, loggedOut, ex.ID), openLocks(t, a, kept, ex.ID)

		b.As(loggedOut).MustDo(`mutation { logout }`, nil, nil)
		if code := cLogout.closeCode(); code != 4403 {
			t.Fatalf("logout through B: want 4403 on A, got %d", code)
		}
		stillOpen(t, cKept, "the other session's socket", ex.ID)
	})
}
