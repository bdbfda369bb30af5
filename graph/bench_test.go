package graph_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/server/servertest"
)

// Grading-desk benchmarks through the real HTTP handler (middleware, auth,
// gqlgen, services), on PostgreSQL when KORRIGO_TEST_POSTGRES_URL is set (SQLite
// otherwise). 16 clients, each on its own copy, like pgbench's clients on their
// own rows; tools/bench/run.sh prints them as ratios to pgbench on the same SQL.
const benchClients = 16

func benchSetup(b *testing.B) (*servertest.Env, []*ent.ExamCopy, *servertest.Client) {
	b.Helper()
	dia := dialect.SQLite
	if dbtest.PostgresURL() != "" {
		dia = dialect.Postgres
	}
	env := servertest.New(b, dbtest.Open(b, dia))
	admin := env.As(env.Admin())
	ex := env.NewExam()
	copies := make([]*ent.ExamCopy, benchClients)
	for i := range copies {
		copies[i] = env.NewCopy(ex, servertest.CopyOpts{})
	}
	b.SetParallelism((benchClients + 1) / 2) // × GOMAXPROCS (2 here) goroutines
	return env, copies, admin
}

func perClient(copies []*ent.ExamCopy) func() *ent.ExamCopy {
	var next atomic.Int64
	return func() *ent.ExamCopy { return copies[int(next.Add(1)-1)%len(copies)] }
}

// One op = acquireCopyLock + releaseCopyLock (pgbench: two single-row UPDATEs).
func BenchmarkLockCycle(b *testing.B) {
	env, copies, admin := benchSetup(b)
	pick := perClient(copies)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		cp := pick()
		for pb.Next() {
			var out lockData
			r := admin.Do(acquire, map[string]any{"c": cp.ID})
			if len(r.Errors) > 0 {
				b.Errorf("acquire: %+v", r.Errors)
				return
			}
			_ = jsonDecode(r, &out)
			if r := admin.Do(release, map[string]any{"c": cp.ID, "t": out.AcquireCopyLock.Token}); len(r.Errors) > 0 {
				b.Errorf("release: %+v", r.Errors)
				return
			}
		}
	})
	_ = env
}

// One op = saveDraft of a 2 KB payload (pgbench: one UPDATE of a 2 KB row).
func BenchmarkAutosave(b *testing.B) {
	_, copies, admin := benchSetup(b)
	pick := perClient(copies)
	payload := map[string]any{"text": strings.Repeat("é", 1000)} // ≈ 2 KB of JSON
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		cp := pick()
		for pb.Next() {
			if r := admin.Do(save, map[string]any{"c": cp.ID, "cl": "bench-tab", "p": payload}); len(r.Errors) > 0 {
				b.Errorf("saveDraft: %+v", r.Errors)
				return
			}
		}
	})
}

// One op = updateAnnotation (CAS on the version + a revision row).
func BenchmarkAnnotationUpdate(b *testing.B) {
	_, copies, admin := benchSetup(b)
	pick := perClient(copies)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		cp := pick()
		var lock lockData
		_ = jsonDecode(admin.Do(acquire, map[string]any{"c": cp.ID, "ttl": 3600}), &lock)
		var made struct {
			CreateAnnotation struct {
				ID      string
				Version int
			}
		}
		if err := jsonDecode(admin.Do(annotate, map[string]any{"c": cp.ID, "t": lock.AcquireCopyLock.Token, "in": rect(0)}), &made); err != nil {
			b.Errorf("create annotation: %v", err)
			return
		}
		version := made.CreateAnnotation.Version
		for pb.Next() {
			r := admin.Do(update, map[string]any{"id": made.CreateAnnotation.ID, "t": lock.AcquireCopyLock.Token,
				"v": version, "in": map[string]any{"text": "Raisonnement juste, calcul faux"}})
			var out struct{ UpdateAnnotation struct{ Version int } }
			if err := jsonDecode(r, &out); err != nil {
				b.Errorf("update: %v", err)
				return
			}
			version = out.UpdateAnnotation.Version
		}
	})
}
