package grading

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
)

// The grading desk's hot paths at the service level (no GraphQL, no HTTP), with
// 16 clients each on its own copy, as correctors work: compare with pgbench's
// single-statement transactions and with `make bench` (the same through the
// handler) to see where the time goes. PostgreSQL when KORRIGO_TEST_POSTGRES_URL
// is set, SQLite otherwise.
const benchClients = 16

func benchFixture(b *testing.B) (*fixture, func() *ent.ExamCopy) {
	dia := dialect.SQLite
	if dbtest.PostgresURL() != "" {
		dia = dialect.Postgres
	}
	f := newFixture(b, dbtest.Open(b, dia))
	copies := make([]*ent.ExamCopy, benchClients)
	for i := range copies {
		copies[i] = f.newCopy(examcopy.StatusREADY, f.teacher)
	}
	var next atomic.Int64
	b.SetParallelism((benchClients + 1) / 2) // × GOMAXPROCS (2 here) goroutines
	return f, func() *ent.ExamCopy { return copies[int(next.Add(1)-1)%len(copies)] }
}

// One lock cycle: acquire + release (pgbench equivalent: two single-row UPDATEs).
func BenchmarkLockCycle(b *testing.B) {
	f, mine := benchFixture(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, ctx := mine(), as(f.teacher)
		for pb.Next() {
			l, err := f.svc.AcquireLock(ctx, c.ID, nil)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := f.svc.ReleaseLock(ctx, c.ID, l.Token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// One autosave of a 2 KB draft (pgbench equivalent: one UPDATE of a 2 KB row).
func BenchmarkAutosave(b *testing.B) {
	f, mine := benchFixture(b)
	payload := rawJSON(fmt.Sprintf(`{"notes":%q}`, strings.Repeat("é", 1000)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, ctx := mine(), as(f.teacher)
		for pb.Next() {
			if _, err := f.svc.SaveDraft(ctx, c.ID, "tab", payload, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// One annotation update under a held lease, from the version last seen.
func BenchmarkAnnotationUpdate(b *testing.B) {
	f, mine := benchFixture(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, ctx := mine(), as(f.teacher)
		token := f.acquire(f.teacher, c)
		a, err := f.svc.CreateAnnotation(ctx, c.ID, token, box())
		if err != nil {
			b.Error(err)
			return
		}
		for i := 0; pb.Next(); i++ {
			x := float64(i%50) / 100
			if a, err = f.svc.UpdateAnnotation(ctx, a.ID, token, a.Version, AnnotationPatch{X: &x}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
