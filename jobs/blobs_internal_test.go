package jobs

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/blob"
	"github.com/korrigo/korrigo/ent/job"
	"github.com/korrigo/korrigo/pdf"
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

// collectionService is an insert-only Service over d with a blob store in a
// temp directory, for CollectBlobs.
func collectionService(t *testing.T, d *db.DB) *Service {
	t.Helper()
	store, err := storage.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{DB: d, Store: store, Runner: &pdf.Runner{}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// oldBlob stores content as a Blob row and a file, both two days old, that
// nothing names.
func oldBlob(t *testing.T, s *Service, content string) storage.Ref {
	t.Helper()
	ctx := system(context.Background())
	ref, err := s.cfg.Store.Put(ctx, strings.NewReader(content), int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-48 * time.Hour)
	s.cfg.DB.Client.Blob.Create().SetSha256(ref.SHA256).SetSize(ref.Size).SetMediaType(mediaCSV).SetCreatedAt(at).
		ExecX(ctx)
	path, _ := s.cfg.Store.Path(ref.SHA256)
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
	return ref
}

const mediaCSV = "text/csv; charset=utf-8"

func blobThere(t *testing.T, s *Service, sha string) (row, file bool) {
	t.Helper()
	row, err := s.cfg.DB.Client.Blob.Query().Where(blob.Sha256(sha)).Exist(system(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	file, err = s.cfg.Store.Exists(sha)
	if err != nil {
		t.Fatal(err)
	}
	return row, file
}

// A day-old Blob row nothing names stays while its file was touched within
// the collection age: Put refreshes the time of a file it finds already
// stored, and the transaction that called it is about to name the row.
func TestCollectionSparesAFileJustPutAgain(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := collectionService(t, d)
		ctx := context.Background()
		ref := oldBlob(t, s, "anonymous_id,total\nA-1,12\n")
		if _, err := s.cfg.Store.Put(ctx, strings.NewReader("anonymous_id,total\nA-1,12\n"), 64); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CollectBlobs(ctx, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if row, file := blobThere(t, s, ref.SHA256); !row || !file {
			t.Fatalf("blob put again an instant ago: row %v, file %v", row, file)
		}
		path, _ := s.cfg.Store.Path(ref.SHA256)
		old := time.Now().Add(-25 * time.Hour)
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CollectBlobs(ctx, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if row, file := blobThere(t, s, ref.SHA256); row || file {
			t.Fatalf("unreferenced day-old blob: row %v, file %v", row, file)
		}
	})
}

// exportNaming records a SUCCEEDED export job whose result names sha, in tx.
func exportNaming(tx *ent.Tx, sha string) error {
	result, _ := json.Marshal(map[string]any{"filename": "x.csv", "sha256": sha})
	at := now()
	return tx.Job.Create().SetKind(job.KindEXPORT_GRADES).SetState(job.StateSUCCEEDED).SetResult(result).
		SetCreatedAt(at).SetUpdatedAt(at).SetFinishedAt(at).Exec(system(context.Background()))
}

// An export that reuses the Blob row of identical bytes while a collection
// looks at that row: the row lock (typedBlobRow, deleteUnreferencedBlob)
// makes the collection wait for the export's commit and then see the job
// that names the blob. Without it the collection deletes the row and the
// file under the export. PostgreSQL only: SQLite's BEGIN IMMEDIATE
// serializes the two transactions entirely.
func TestCollectionWaitsForAnExportReusingTheBlob(t *testing.T) {
	if dbtest.PostgresURL() == "" {
		t.Skip("KORRIGO_TEST_POSTGRES_URL not set")
	}
	d := dbtest.Open(t, dialect.Postgres)
	s := collectionService(t, d)
	ctx := system(context.Background())
	ref := oldBlob(t, s, "anonymous_id,total\nA-1,14\n")

	export, err := d.Client.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer export.Rollback()
	if _, err := typedBlobRow(ctx, export, ref, mediaCSV, 0); err != nil {
		t.Fatal(err)
	}
	collected := make(chan error, 1)
	go func() {
		_, err := s.CollectBlobs(ctx, 24*time.Hour)
		collected <- err
	}()
	waitForLockWaiter(t, d)
	if err := exportNaming(export, ref.SHA256); err != nil {
		t.Fatal(err)
	}
	if err := export.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-collected; err != nil {
		t.Fatal(err)
	}
	if row, file := blobThere(t, s, ref.SHA256); !row || !file {
		t.Fatalf("blob of the export that committed meanwhile: row %v, file %v", row, file)
	}
}

// The other order: the collection deleted the row first (not committed
// yet); the export waits for it, then records the row again, so its job
// never names a missing row.
func TestExportRecordsTheBlobAgainAfterACollection(t *testing.T) {
	if dbtest.PostgresURL() == "" {
		t.Skip("KORRIGO_TEST_POSTGRES_URL not set")
	}
	d := dbtest.Open(t, dialect.Postgres)
	s := collectionService(t, d)
	ctx := system(context.Background())
	ref := oldBlob(t, s, "anonymous_id,total\nA-1,15\n")

	collect, err := d.Client.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer collect.Rollback()
	if gone, err := deleteUnreferencedBlob(ctx, collect, ref.SHA256); err != nil || !gone {
		t.Fatalf("collect: %v, %v", gone, err)
	}
	exported := make(chan error, 1)
	go func() {
		exported <- db.WithTx(ctx, d.Client, func(tx *ent.Tx) error {
			if _, err := typedBlobRow(ctx, tx, ref, mediaCSV, 0); err != nil {
				return err
			}
			return exportNaming(tx, ref.SHA256)
		})
	}()
	waitForLockWaiter(t, d)
	if err := collect.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-exported; err != nil {
		t.Fatalf("export: %v", err)
	}
	if row, _ := blobThere(t, s, ref.SHA256); !row {
		t.Fatal("the export names a Blob row that is gone")
	}
}
