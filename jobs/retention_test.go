package jobs_test

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/auditlog"
	"github.com/korrigo/korrigo/ent/blob"
	"github.com/korrigo/korrigo/ent/job"
	"github.com/korrigo/korrigo/jobs"
	"github.com/korrigo/korrigo/server/servertest"
)

// storedExport records what the export runner leaves behind: a stored file,
// its Blob row and a job whose result names it, the job finished ago before
// now, and the blob row as old as the first export of its bytes (backdated
// rows stand in for a clock: nothing sleeps).
func storedExport(t *testing.T, env *servertest.Env, examID, content string, ago time.Duration) *ent.Job {
	t.Helper()
	ctx := env.Ctx()
	ref, err := env.App.Services.Jobs.Store().Put(context.Background(), strings.NewReader(content), int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-ago)
	// Put refreshes the file's time, which the collection honours: the file
	// is as old as this export.
	path, err := env.App.Services.Jobs.Store().Path(ref.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
	err = env.DB.Client.Blob.Create().SetSha256(ref.SHA256).SetSize(ref.Size).SetMediaType("text/csv; charset=utf-8").
		SetCreatedAt(at).OnConflictColumns(blob.FieldSha256).DoNothing().Exec(ctx)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		t.Fatal(err)
	}
	result, _ := json.Marshal(map[string]any{"format": "CSV", "rows": 3, "filename": "maths-results.csv",
		"mediaType": "text/csv; charset=utf-8", "size": ref.Size, "sha256": ref.SHA256})
	return env.DB.Client.Job.Create().SetKind(job.KindEXPORT_GRADES).SetState(job.StateSUCCEEDED).SetExamID(examID).
		SetResult(result).SetCreatedAt(at.Add(-time.Minute)).SetStartedAt(at.Add(-time.Minute)).SetFinishedAt(at).
		SetUpdatedAt(at).SaveX(ctx)
}

// sameJSON compares JSON values (PostgreSQL's jsonb reorders keys).
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func exportSHA(t *testing.T, j *ent.Job) string {
	t.Helper()
	var r struct{ SHA256 string }
	if err := json.Unmarshal(j.Result, &r); err != nil || r.SHA256 == "" {
		t.Fatalf("export %s names no file: %s", j.ID, j.Result)
	}
	return r.SHA256
}

// blobKept: the Blob row and the stored file of sha are both there, or both
// gone (never one without the other).
func blobKept(t *testing.T, env *servertest.Env, sha string) bool {
	t.Helper()
	row, err := env.DB.Client.Blob.Query().Where(blob.Sha256(sha)).Exist(env.Ctx())
	if err != nil {
		t.Fatal(err)
	}
	file, err := env.App.Services.Jobs.Store().Exists(sha)
	if err != nil {
		t.Fatal(err)
	}
	if row != file {
		t.Fatalf("blob %s: row %v, file %v", sha, row, file)
	}
	return row
}

// Exports lose their file once the retention has passed since their job
// finished: the job row stays (counts, file name) and says the file expired,
// the sweep's blob collection removes the row and the file, unless another
// unexpired export of identical bytes still names them. Younger exports,
// running ones, and every export when the retention is 0, keep their file.
func TestExportRetention(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		js := env.App.Services.Jobs
		ctx := env.Ctx()
		ex := env.NewExam()
		const week = 7 * 24 * time.Hour

		old := storedExport(t, env, ex.ID, "anonymous_id,total\nA-1,12\n", 8*24*time.Hour)
		// The same grades exported twice: one file, one Blob row.
		twinOld := storedExport(t, env, ex.ID, "anonymous_id,total\nA-1,14\n", 9*24*time.Hour)
		young := storedExport(t, env, ex.ID, "anonymous_id,total\nA-1,14\n", 6*24*time.Hour)
		running := env.DB.Client.Job.Create().SetKind(job.KindEXPORT_PDFS).SetState(job.StateRUNNING).SetExamID(ex.ID).
			SetCreatedAt(time.Now().Add(-9 * 24 * time.Hour)).SetStartedAt(time.Now().Add(-9 * 24 * time.Hour)).
			SetUpdatedAt(time.Now().Add(-9 * 24 * time.Hour)).SaveX(ctx)
		oldSHA, youngSHA := exportSHA(t, old), exportSHA(t, young)
		if exportSHA(t, twinOld) != youngSHA {
			t.Fatal("identical exports do not share their blob")
		}

		// Retention 0: kept forever, and blob collection (which takes day-old
		// blobs nothing names) counts an export's result as a reference.
		if err := js.Reconfigure(func(c *jobs.Config) { c.ExportRetention = 0 }); err != nil {
			t.Fatal(err)
		}
		if err := js.SweepStorage(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, j := range []*ent.Job{old, young, twinOld} {
			if got := env.DB.Client.Job.GetX(ctx, j.ID); !sameJSON(got.Result, j.Result) {
				t.Fatalf("retention 0 changed %s: %s", j.ID, got.Result)
			}
		}
		if !blobKept(t, env, oldSHA) || !blobKept(t, env, youngSHA) {
			t.Fatal("retention 0: an export's blob was collected")
		}

		if err := js.Reconfigure(func(c *jobs.Config) { c.ExportRetention = week }); err != nil {
			t.Fatal(err)
		}
		for range 2 { // a second sweep finds nothing more to do
			if err := js.SweepStorage(context.Background()); err != nil {
				t.Fatal(err)
			}
		}

		for _, j := range []*ent.Job{old, twinOld} {
			got := env.DB.Client.Job.GetX(ctx, j.ID)
			var r map[string]any
			_ = json.Unmarshal(got.Result, &r)
			if got.State != job.StateSUCCEEDED || r["sha256"] != nil || r["expired"] != true || r["expiredAt"] == nil ||
				r["filename"] != "maths-results.csv" || r["rows"] != float64(3) || got.FinishedAt == nil {
				t.Fatalf("expired export %s: %s %s", j.ID, got.State, got.Result)
			}
		}
		if blobKept(t, env, oldSHA) {
			t.Fatal("the expired export's blob is still there")
		}
		if !blobKept(t, env, youngSHA) {
			t.Fatal("a blob an unexpired export shares was collected")
		}
		if got := env.DB.Client.Job.GetX(ctx, young.ID); !sameJSON(got.Result, young.Result) {
			t.Fatalf("the young export changed: %s", got.Result)
		}
		if got := env.DB.Client.Job.GetX(ctx, running.ID); got.State != job.StateRUNNING || got.Result != nil {
			t.Fatalf("the running export changed: %s %s", got.State, got.Result)
		}

		// Each expiry is audited once, by the server, with the file it dropped.
		audits := env.DB.Client.AuditLog.Query().Where(auditlog.Action("EXPORT_EXPIRED")).AllX(ctx)
		seen := map[string]bool{}
		for _, a := range audits {
			if a.ActorID != nil || a.Target != ex.ID || a.Metadata["filename"] != "maths-results.csv" ||
				a.Metadata["sha256"] == nil || a.Metadata["expiredAt"] == nil {
				t.Fatalf("expiry audit: %+v", a)
			}
			seen[a.Metadata["jobId"].(string)] = true
		}
		if len(audits) != 2 || !seen[old.ID] || !seen[twinOld.ID] {
			t.Fatalf("expiry audits: %+v", audits)
		}

		// Once its last export expires, the shared blob goes too.
		env.DB.Client.Job.UpdateOneID(young.ID).SetFinishedAt(time.Now().Add(-8 * 24 * time.Hour)).ExecX(ctx)
		if n, err := js.ExpireExports(context.Background(), time.Now()); err != nil || n != 1 {
			t.Fatalf("expire the last twin: %d, %v", n, err)
		}
		if _, err := js.CollectBlobs(context.Background(), 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if blobKept(t, env, youngSHA) {
			t.Fatal("the shared blob outlived every export naming it")
		}
	})
}

// The periodic sweep (on River's leader) runs the expiry and the blob
// collection: an export past the retention loses its file without anyone
// calling SweepStorage.
func TestPeriodicSweepExpiresExports(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := newEnv(t, d, func(c *jobs.Config) {
			c.ExportRetention = 7 * 24 * time.Hour
			c.SweepInterval = 100 * time.Millisecond
		})
		old := storedExport(t, env, env.NewExam().ID, "anonymous_id,total\nA-9,3\n", 8*24*time.Hour)
		sha := exportSHA(t, old)
		// No deadline: the test binary's timeout stops a sweep that never comes.
		for blobKept(t, env, sha) {
			time.Sleep(50 * time.Millisecond)
		}
		var r map[string]any
		_ = json.Unmarshal(env.DB.Client.Job.GetX(env.Ctx(), old.ID).Result, &r)
		if r["expired"] != true || r["sha256"] != nil {
			t.Fatalf("swept export: %v", r)
		}
	})
}
