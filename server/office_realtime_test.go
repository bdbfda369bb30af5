package server_test

import (
	"testing"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server/servertest"
)

const subAssign = `subscription($e: ID!){ copyStatusChanged(examId: $e){
	kind copyId status previousStatus version assignedCorrectorId previousCorrectorId copies { copyId } } }`

type assignEvent struct {
	Kind                                     string
	CopyID, Status, PreviousStatus           *string
	Version                                  *int
	AssignedCorrectorID, PreviousCorrectorID *string
	Copies                                   []struct{ CopyID string }
}

func nextAssign(t *testing.T, c *wsConn, id string) assignEvent {
	t.Helper()
	var d struct{ CopyStatusChanged assignEvent }
	c.data(id, &d)
	return d.CopyStatusChanged
}

// dispatchCopies and reassignCopy publish ASSIGNED on copyStatusChanged after
// commit: the admin sees every copy, a corrector the copies given to them,
// and the corrector a copy was taken from is told once.
func TestAssignmentEvents(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newInstance(t, d, "", nil)
		admin := e.Admin()
		a, aTok := e.NewUser(user.RoleTEACHER, "Alice")
		b, bTok := e.NewUser(user.RoleTEACHER, "Bob")
		ex := e.NewExam(a, b)
		copies := map[string]int{} // id → version
		for range 4 {
			cp := e.NewCopy(ex, servertest.CopyOpts{})
			copies[cp.ID] = cp.Version
		}

		subs := map[string]*wsConn{}
		ops := map[string]string{}
		for who, tok := range map[string]string{"admin": admin, "a": aTok, "b": bTok} {
			c := mustDial(t, e, dialOpts{})
			c.init(bearer(tok))
			ops[who] = c.subscribe(subAssign, map[string]any{"e": ex.ID})
			snap := nextAssign(t, c, ops[who])
			want := 0
			if who == "admin" {
				want = 4
			}
			if snap.Kind != "SNAPSHOT" || len(snap.Copies) != want {
				t.Fatalf("%s snapshot: %+v", who, snap)
			}
			subs[who] = c
		}

		var out struct {
			DispatchCopies struct {
				Distribution []struct {
					Corrector struct{ ID string }
					Assigned  int
				}
			}
		}
		e.As(admin).MustDo(`mutation($e: ID!){ dispatchCopies(examId: $e){ distribution { corrector { id } assigned } } }`,
			map[string]any{"e": ex.ID}, &out)
		share := map[string]int{}
		for _, s := range out.DispatchCopies.Distribution {
			share[s.Corrector.ID] = s.Assigned
		}
		owner := map[string]string{}
		for range 4 {
			ev := nextAssign(t, subs["admin"], ops["admin"])
			if ev.Kind != "ASSIGNED" || ev.CopyID == nil || ev.AssignedCorrectorID == nil || ev.PreviousCorrectorID != nil ||
				*ev.Status != "READY" || *ev.PreviousStatus != "READY" || *ev.Version != copies[*ev.CopyID]+1 {
				t.Fatalf("admin: want ASSIGNED at version+1, got %+v", ev)
			}
			owner[*ev.CopyID] = *ev.AssignedCorrectorID
		}
		if len(owner) != 4 {
			t.Fatalf("admin saw %d copies assigned", len(owner))
		}
		for who, u := range map[string]string{"a": a.ID, "b": b.ID} {
			for range share[u] {
				ev := nextAssign(t, subs[who], ops[who])
				if ev.Kind != "ASSIGNED" || *ev.AssignedCorrectorID != u || owner[*ev.CopyID] != u {
					t.Fatalf("%s: want their own copies assigned, got %+v", who, ev)
				}
			}
		}

		// One of Alice's copies goes to Bob: all three are told, and the next
		// event each corrector gets proves no other copy's event reached them.
		var moved string
		for id, u := range owner {
			if u == a.ID {
				moved = id
			}
		}
		if moved == "" {
			t.Fatalf("Alice got no copy: %+v", share)
		}
		e.As(admin).MustDo(`mutation($c: ID!, $u: ID!){ reassignCopy(copyId: $c, correctorId: $u){ id } }`,
			map[string]any{"c": moved, "u": b.ID}, nil)
		for _, who := range []string{"admin", "a", "b"} {
			ev := nextAssign(t, subs[who], ops[who])
			if ev.Kind != "ASSIGNED" || *ev.CopyID != moved || *ev.AssignedCorrectorID != b.ID ||
				ev.PreviousCorrectorID == nil || *ev.PreviousCorrectorID != a.ID || *ev.Version != copies[moved]+2 {
				t.Fatalf("%s: want the reassignment of %s, got %+v", who, moved, ev)
			}
		}
	})
}
