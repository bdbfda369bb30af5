package jobs_test

import (
	"errors"
	"testing"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/job"
	"github.com/korrigo/korrigo/ids"
	"github.com/korrigo/korrigo/server/servertest"
)

// riverJobs counts River's finalization jobs.
func riverJobs(t *testing.T, d *db.DB) int {
	t.Helper()
	var n int
	if err := d.SQL.QueryRow(`SELECT count(*) FROM river_job WHERE kind = 'korrigo_finalize_copy'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEnqueueCommitsWithTheTransaction: the River job is written in the
// caller's ent transaction (through ent.Tx.SQLTx), so a rolled-back
// transaction leaves no River job behind and a committed one exactly one.
// Workers are not started: nothing consumes the jobs under the test.
func TestEnqueueCommitsWithTheTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		js := env.App.Services.Jobs
		c := env.NewCopy(env.NewExam(), servertest.CopyOpts{Pages: 1})
		enqueue := func(commit bool) string {
			var id string
			errRollback := errors.New("roll back")
			err := db.WithTx(env.Ctx(), env.DB.Client, func(tx *ent.Tx) error {
				j, err := tx.Job.Create().SetID(ids.New(ids.Job)).SetKind(job.KindFINALIZE_COPY).
					SetCopyID(c.ID).Save(env.Ctx())
				if err != nil {
					return err
				}
				id = j.ID
				if err := js.EnqueueFinalize(env.Ctx(), tx, j); err != nil {
					return err
				}
				// Inside the transaction, River's row is visible to it.
				if j.RiverJobID == nil || tx.Job.GetX(env.Ctx(), j.ID).RiverJobID == nil {
					t.Error("job not linked to its River job inside the transaction")
				}
				if !commit {
					return errRollback
				}
				return nil
			})
			if commit && err != nil || !commit && !errors.Is(err, errRollback) {
				t.Fatalf("transaction: %v", err)
			}
			return id
		}
		rolledBack := enqueue(false)
		if n := riverJobs(t, d); n != 0 {
			t.Errorf("rolled-back transaction left %d River jobs", n)
		}
		if env.DB.Client.Job.Query().Where(job.ID(rolledBack)).ExistX(env.Ctx()) {
			t.Error("rolled-back transaction left its Job row")
		}
		committed := enqueue(true)
		if n := riverJobs(t, d); n != 1 {
			t.Errorf("committed transaction left %d River jobs, want 1", n)
		}
		j := env.DB.Client.Job.GetX(env.Ctx(), committed)
		var kind string
		q := "SELECT kind FROM river_job WHERE id = ?"
		if d.Dialect == "postgres" {
			q = "SELECT kind FROM river_job WHERE id = $1"
		}
		if j.RiverJobID == nil || d.SQL.QueryRow(q, *j.RiverJobID).Scan(&kind) != nil {
			t.Error("committed job not linked to its River job")
		}
	})
}
