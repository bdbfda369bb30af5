package grading

import (
	"testing"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
)

func TestScores(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		token := f.acquire(f.teacher, f.copy)
		ctx := as(f.teacher)
		version := f.copy.Version

		c, err := f.svc.SetQuestionScore(ctx, f.copy.ID, token, "q2", pts(7.25), new("Bien vu"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Version != version+1 {
			t.Fatalf("copy version %d, want %d", c.Version, version+1)
		}
		// Upsert: a new value, the remark kept when not given.
		if _, err := f.svc.SetQuestionScore(ctx, f.copy.ID, token, "q2", pts(8), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.SetQuestionScore(ctx, f.copy.ID, token, "q1a", pts(4), nil); err != nil {
			t.Fatal(err)
		}
		scores, err := f.svc.Scores(ctx, f.copy.ID)
		if err != nil || len(scores) != 2 {
			t.Fatalf("scores: %v %v", scores, err)
		}
		if scores[0].QuestionID != "q1a" || scores[1].QuestionID != "q2" || scores[1].Points != 8 || scores[1].Remark != "Bien vu" {
			t.Fatalf("scores in scheme order: %+v %+v", scores[0], scores[1])
		}
		c = f.reload(f.copy)
		if total, err := f.svc.Total(ctx, c, nil); err != nil || total != 12 {
			t.Fatalf("total %v %v", total, err)
		}
		if g, err := f.svc.Grade20(ctx, c, nil); g != nil || err != nil {
			t.Fatalf("grade20 with q1b unscored: %v %v", g, err)
		}
		if _, err := f.svc.SetQuestionScore(ctx, f.copy.ID, token, "q1b", pts(0), nil); err != nil {
			t.Fatal(err)
		}
		if g, err := f.svc.Grade20(ctx, c, nil); err != nil || g == nil || *g != 12 {
			t.Fatalf("grade20: %v %v, want 12", g, err)
		}
		// Nil points remove the score.
		if _, err := f.svc.SetQuestionScore(ctx, f.copy.ID, token, "q2", nil, nil); err != nil {
			t.Fatal(err)
		}
		if total, _ := f.svc.Total(ctx, c, nil); total != 4 {
			t.Fatalf("total after removing q2: %v", total)
		}

		c, err = f.svc.SetAppreciation(ctx, f.copy.ID, token, "Travail sérieux, quelques étourderies.")
		if err != nil || c.Appreciation != "Travail sérieux, quelques étourderies." {
			t.Fatalf("appreciation: %v %v", c, err)
		}
		if f.reload(f.copy).Version != version+6 {
			t.Fatalf("every score and appreciation write bumps the copy version")
		}
	})
}

func TestScoreBounds(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		token := f.acquire(f.teacher, f.copy)
		ctx := as(f.teacher)
		before := f.rows()
		for name, tc := range map[string]struct {
			question string
			points   float64
		}{
			"negative":         {"q1a", -1},
			"above the leaf":   {"q1a", 4.01},
			"three decimals":   {"q2", 1.005},
			"a group":          {"q1", 1},
			"unknown question": {"q9", 1},
		} {
			_, err := f.svc.SetQuestionScore(ctx, f.copy.ID, token, tc.question, pts(tc.points), nil)
			wantCode(t, err, apperr.BadUserInput, name)
		}
		long := make([]byte, MaxRemark+1)
		for i := range long {
			long[i] = 'a'
		}
		_, err := f.svc.SetQuestionScore(ctx, f.copy.ID, token, "q2", pts(1), new(string(long)))
		wantCode(t, err, apperr.BadUserInput, "a long remark")
		_, err = f.svc.SetAppreciation(ctx, f.copy.ID, token, string(make([]byte, MaxAppreciation+1)))
		wantCode(t, err, apperr.BadUserInput, "a long appreciation")
		f.assertUnchanged(before, "refused scores")

		for _, p := range []float64{0, 4, 3.75} {
			if _, err := f.svc.SetQuestionScore(ctx, f.copy.ID, token, "q1a", pts(p), nil); err != nil {
				t.Fatalf("%v points: %v", p, err)
			}
		}
	})
}
