package server_test

import (
	"encoding/json"
	"testing"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server/servertest"
)

// A temporary password opens no subscription (gqlgen runs no root-field
// middleware for them): the operation ends with FORBIDDEN
// PASSWORD_CHANGE_REQUIRED and no snapshot. Once changed, the same
// subscription opens.
func TestSubscriptionsNeedThePasswordChanged(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newInstance(t, d, "", nil)
		admin := e.As(e.Admin())
		teacher, _ := e.NewUser(user.RoleTEACHER, "Tina")
		ex := e.NewExam(teacher)
		var reset struct{ ResetUserPassword struct{ Password string } }
		admin.MustDo(`mutation($u: ID!){ resetUserPassword(userId: $u){ password } }`,
			map[string]any{"u": teacher.ID}, &reset)
		tok := e.Login(teacher.Email, reset.ResetUserPassword.Password)

		c := mustDial(t, e, dialOpts{})
		c.init(bearer(tok))
		id := c.subscribe(subLocks, map[string]any{"e": ex.ID})
		m := c.next()
		var r struct{ Errors []servertest.Error }
		if m.ID == id && m.Type == "error" {
			_ = json.Unmarshal(m.Payload, &r.Errors)
		} else if m.ID == id && m.Type == "next" {
			_ = json.Unmarshal(m.Payload, &r)
		}
		if len(r.Errors) != 1 || r.Errors[0].Code() != "FORBIDDEN" ||
			r.Errors[0].Extensions["reason"] != "PASSWORD_CHANGE_REQUIRED" {
			t.Fatalf("temporary password subscribing: want FORBIDDEN PASSWORD_CHANGE_REQUIRED, got %s %s", m.Type, m.Payload)
		}
		if m.Type != "error" {
			if m := c.next(); m.Type != "complete" || m.ID != id {
				t.Fatalf("want the operation completed, got %s %s %s", m.Type, m.ID, m.Payload)
			}
		}

		const changed = "une phrase de passe bien à moi 2026"
		e.As(tok).MustDo(`mutation($c: String!, $n: String!){ changePassword(currentPassword: $c, newPassword: $n) }`,
			map[string]any{"c": reset.ResetUserPassword.Password, "n": changed}, nil)
		c2 := mustDial(t, e, dialOpts{})
		c2.init(bearer(e.Login(teacher.Email, changed)))
		id = c2.subscribe(subLocks, map[string]any{"e": ex.ID})
		var snap struct{ CopyLockChanged struct{ Kind string } }
		c2.data(id, &snap)
		if snap.CopyLockChanged.Kind != "SNAPSHOT" {
			t.Fatalf("after the change: want the snapshot, got %+v", snap)
		}
	})
}
