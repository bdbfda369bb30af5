package jobs

import (
	"context"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/blob"
	"github.com/korrigo/korrigo/storage"
)

// Two transactions recording the same new content at once (two uploads of one
// file, two jobs writing identical PDFs) must both succeed with one Blob row.
// The second one is held on the unique sha256 index until the first commits;
// without ON CONFLICT it then fails with a unique violation. PostgreSQL only:
// SQLite's BEGIN IMMEDIATE serializes the two transactions entirely.
func TestBlobRowRacesOnTheSameContent(t *testing.T) {
	if dbtest.PostgresURL() == "" {
		t.Skip("KORRIGO_TEST_POSTGRES_URL not set")
	}
	d := dbtest.Open(t, dialect.Postgres)
	ctx := system(context.Background())
	ref := storage.Ref{SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Size: 10}

	first, err := d.Client.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Rollback()
	if _, err := blobRow(ctx, first, ref, 1); err != nil {
		t.Fatal(err)
	}

	second := make(chan error, 1)
	var got *ent.Blob
	go func() {
		second <- db.WithTx(ctx, d.Client, func(tx *ent.Tx) error {
			b, err := blobRow(ctx, tx, ref, 1)
			got = b
			return err
		})
	}()
	waitForLockWaiter(t, d)
	if err := first.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatalf("second transaction: %v", err)
	}
	n, err := d.Client.Blob.Query().Where(blob.Sha256(ref.SHA256)).Count(ctx)
	if err != nil || n != 1 {
		t.Fatalf("%d rows (%v), want 1", n, err)
	}
	if got == nil || got.Sha256 != ref.SHA256 {
		t.Fatalf("second transaction got %+v", got)
	}
}

// waitForLockWaiter returns once a session of d's database waits on a lock:
// the second transaction has reached its insert and is held by the first.
func waitForLockWaiter(t *testing.T, d *db.DB) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var n int
		err := d.SQL.QueryRow(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
	}
	t.Fatal("the second transaction never waited on the first")
}
