package graph_test

import (
	"context"
	"testing"
	"time"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/server/servertest"
)

// The grading desk's hot requests have a fixed database budget (issue 8): each
// costs a handful of round trips, and one more statement per request is a
// measurable share of its time. Counted through ent, per request, in the steady
// state (the caller's draft exists): a regression fails here, whatever the
// machine's speed. Transactions count as the database does: an explicit one is
// one, a statement outside one is its own.
func TestDeskRequestBudgets(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.As(env.Admin())
		cp := env.NewCopy(env.NewExam(), servertest.CopyOpts{})
		budget := func(name string, statements, xacts int64, run func()) {
			t.Helper()
			// The session was just seen: its once-a-minute touch (a write)
			// cannot fall in the measured request, however slow the machine.
			if err := d.Client.Session.Update().SetLastSeenAt(time.Now()).Exec(rules.System(context.Background())); err != nil {
				t.Fatal(err)
			}
			env.Statements.Reset()
			run()
			if s, x := env.Statements.Load(), env.Statements.Transactions(); s > statements || x > xacts {
				t.Errorf("%s ran %d statements in %d transactions, budget %d in %d:\n%s",
					name, s, x, statements, xacts, env.Statements.Log())
			}
		}
		// Authentication: one statement (session joined with its user), no write
		// (the session's expiry slides at most once per TouchInterval).
		budget("me", 2, 2, func() { admin.MustDo(`{ me { id } }`, nil, nil) })

		var l lockData
		// Auth; then lock the copy, upsert the lease, read it back, audit event.
		// (Selecting the lease's owner would read the user: one more.)
		budget("acquireCopyLock", 5, 2, func() {
			admin.MustDo(`mutation($c: ID!){ acquireCopyLock(copyId: $c){ token expiresAt } }`, map[string]any{"c": cp.ID}, &l)
		})
		// Auth; then lock the copy, delete the lease, audit event.
		budget("releaseCopyLock", 4, 2, func() {
			admin.MustDo(release, map[string]any{"c": cp.ID, "t": l.AcquireCopyLock.Token}, nil)
		})
		vars := map[string]any{"c": cp.ID, "cl": "tab", "p": map[string]any{"text": "x"}}
		admin.MustDo(save, vars, nil) // creates the draft
		// Auth; then lock the copy, move the draft forward (RETURNING what the
		// answer needs).
		budget("saveDraft", 3, 2, func() { admin.MustDo(save, vars, nil) })
	})
}
