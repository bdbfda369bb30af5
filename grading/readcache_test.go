package grading

import (
	"context"
	"testing"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
)

// A batched read loads the scores through the caller's read rules: a batch that
// holds a copy the caller may not see (a bug in whoever built it) yields an
// empty sheet for that copy, never its scores, while the caller's own copy in
// the same batch is complete.
func TestBatchedScoresFollowTheReadRules(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.scoreAll(f.teacher, f.copy, f.acquire(f.teacher, f.copy))
		theirs := f.reload(f.copy)
		mine := f.newCopy(examcopy.StatusREADY, f.other)
		f.scoreAll(f.other, mine, f.acquire(f.other, mine))
		mine = f.reload(mine)
		batch := Batch(func() []*ent.ExamCopy { return []*ent.ExamCopy{mine, theirs} })

		type sheet struct {
			scores int
			total  float64
			graded bool
		}
		read := func(ctx context.Context, c *ent.ExamCopy) sheet {
			t.Helper()
			scores, err := f.svc.CopyScores(ctx, c, batch)
			if err != nil {
				t.Fatal(err)
			}
			total, err := f.svc.Total(ctx, c, batch)
			if err != nil {
				t.Fatal(err)
			}
			g, err := f.svc.Grade20(ctx, c, batch)
			if err != nil {
				t.Fatal(err)
			}
			return sheet{len(scores), total, g != nil}
		}
		full := read(context.Background(), theirs) // no cache: the copy alone, on the server's behalf
		if full.scores != 3 || full.total == 0 || !full.graded {
			t.Fatalf("fixture: the scored copy reads %+v", full)
		}

		// Olga corrects mine, not theirs; the first read loads the whole batch.
		ctx := WithReadCache(as(f.other))
		if got := read(ctx, mine); got != full {
			t.Fatalf("the caller's own copy in the batch: %+v, want %+v", got, full)
		}
		if got := read(ctx, theirs); got != (sheet{}) {
			t.Fatalf("a copy the caller may not see, through the batch: %+v, want nothing", got)
		}
		// In the other order, and for a student: the same.
		ctx = WithReadCache(as(f.other))
		if got := read(ctx, theirs); got != (sheet{}) {
			t.Fatalf("an invisible copy loaded first: %+v, want nothing", got)
		}
		if got := read(WithReadCache(as(f.student)), mine); got != (sheet{}) {
			t.Fatalf("a student reads another's copy through a batch: %+v", got)
		}
		// Their corrector and the admin see both.
		for _, u := range []*ent.User{f.teacher, f.admin} {
			if got := read(WithReadCache(as(u)), theirs); got != full {
				t.Fatalf("%s reads %+v, want %+v", u.Name, got, full)
			}
		}
	})
}
