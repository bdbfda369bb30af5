package grading

import (
	"encoding/json"
	"testing"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/annotation"
	"github.com/korrigo/korrigo/ent/annotationrevision"
)

func box() AnnotationInput {
	return AnnotationInput{PageIndex: 1, X: 0.1, Y: 0.2, W: 0.3, H: 0.1, Kind: annotation.KindERROR, Text: "Signe oublié", Points: pts(-0.5)}
}

func revisions(t *testing.T, f *fixture, id string) []*ent.AnnotationRevision {
	t.Helper()
	revs, err := f.d.Client.AnnotationRevision.Query().
		Where(annotationrevision.AnnotationID(id)).
		Order(ent.Asc(annotationrevision.FieldVersion)).
		All(f.sys)
	if err != nil {
		t.Fatal(err)
	}
	return revs
}

func TestAnnotationLifecycle(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		token := f.acquire(f.teacher, f.copy)
		ctx := as(f.teacher)

		a, err := f.svc.CreateAnnotation(ctx, f.copy.ID, token, box())
		if err != nil {
			t.Fatal(err)
		}
		if a.Version != 1 || a.AuthorID != f.teacher.ID || a.Points == nil || *a.Points != -0.5 {
			t.Fatalf("created %+v", a)
		}

		// Move it and drop its points; the rectangle is checked once patched.
		a, err = f.svc.UpdateAnnotation(ctx, a.ID, token, 1, AnnotationPatch{X: pts(0.6), Points: PointsPatch{Set: true}})
		if err != nil {
			t.Fatal(err)
		}
		if a.Version != 2 || a.X != 0.6 || a.W != 0.3 || a.Points != nil || a.Text != "Signe oublié" {
			t.Fatalf("updated %+v", a)
		}
		_, err = f.svc.UpdateAnnotation(ctx, a.ID, token, 2, AnnotationPatch{W: pts(0.5)}) // 0.6 + 0.5 > 1
		wantCode(t, err, apperr.BadUserInput, "a patch pushing the rectangle off the page")
		// Absent points are kept, a value replaces them.
		a, err = f.svc.UpdateAnnotation(ctx, a.ID, token, 2, AnnotationPatch{Points: PointsPatch{Set: true, Value: pts(1)}})
		if err != nil || a.Version != 3 || *a.Points != 1 {
			t.Fatalf("set points: %+v %v", a, err)
		}
		a, err = f.svc.UpdateAnnotation(ctx, a.ID, token, 3, AnnotationPatch{Text: new("ok")})
		if err != nil || a.Version != 4 || a.Points == nil || *a.Points != 1 {
			t.Fatalf("keep points: %+v %v", a, err)
		}

		_, err = f.svc.DeleteAnnotation(ctx, a.ID, token, 3)
		if e := wantCode(t, err, apperr.VersionConflict, "delete from a stale version"); e.Extensions["currentVersion"] != 4 {
			t.Fatalf("currentVersion %v", e.Extensions["currentVersion"])
		}
		id, err := f.svc.DeleteAnnotation(ctx, a.ID, token, 4)
		if err != nil || id != a.ID {
			t.Fatalf("delete: %q %v", id, err)
		}
		stored, _ := d.Client.Annotation.Get(f.sys, a.ID)
		if stored.DeletedAt == nil || stored.Version != 5 {
			t.Fatalf("soft delete: %+v", stored)
		}
		_, err = f.svc.UpdateAnnotation(ctx, a.ID, token, 5, AnnotationPatch{Text: new("x")})
		wantCode(t, err, apperr.NotFound, "update a deleted annotation")
		_, err = f.svc.UpdateAnnotation(ctx, a.ID, token, 4, AnnotationPatch{Text: new("x")})
		wantCode(t, err, apperr.VersionConflict, "update a deleted annotation from before the delete")

		revs := revisions(t, f, a.ID)
		wantActions := []annotationrevision.Action{"CREATE", "UPDATE", "UPDATE", "UPDATE", "DELETE"}
		if len(revs) != len(wantActions) {
			t.Fatalf("%d revisions, want %d", len(revs), len(wantActions))
		}
		for i, r := range revs {
			var snap annotationSnapshot
			if err := json.Unmarshal(r.Snapshot, &snap); err != nil {
				t.Fatal(err)
			}
			if r.Version != i+1 || r.Action != wantActions[i] || snap.Version != i+1 || r.AuthorID != f.teacher.ID {
				t.Fatalf("revision %d: %+v %+v", i, r, snap)
			}
		}
		var first annotationSnapshot
		_ = json.Unmarshal(revs[0].Snapshot, &first)
		if first.X != 0.1 || first.Points == nil || *first.Points != -0.5 {
			t.Fatalf("the first revision was rewritten: %+v", first)
		}
	})
}

// Two editors save the same version at once: one wins, the other gets
// VERSION_CONFLICT with the winner's version, and the history has every accepted
// change.
func TestUpdateAnnotationRace(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		token := f.acquire(f.teacher, f.copy)
		a, err := f.svc.CreateAnnotation(as(f.teacher), f.copy.ID, token, box())
		if err != nil {
			t.Fatal(err)
		}
		const rounds = 30
		version := 1
		for round := range rounds {
			errs := make([]error, 2)
			got := make([]*ent.Annotation, 2)
			race(2, func(i int) {
				text := []string{"left", "right"}[i]
				got[i], errs[i] = f.svc.UpdateAnnotation(as(f.teacher), a.ID, token, version, AnnotationPatch{Text: &text})
			})
			winner := -1
			for i, err := range errs {
				if err == nil {
					if winner >= 0 {
						t.Fatalf("round %d: both editors won", round)
					}
					winner = i
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: nobody won: %v", round, errs)
			}
			e := wantCode(t, errs[1-winner], apperr.VersionConflict, "the slower editor")
			if e.Extensions["currentVersion"] != version+1 || got[winner].Version != version+1 {
				t.Fatalf("round %d: currentVersion %v, winner at %d, want %d",
					round, e.Extensions["currentVersion"], got[winner].Version, version+1)
			}
			version++
		}
		revs := revisions(t, f, a.ID)
		if len(revs) != rounds+1 {
			t.Fatalf("%d revisions, want %d", len(revs), rounds+1)
		}
		for i, r := range revs {
			if r.Version != i+1 {
				t.Fatalf("revision versions are not 1..%d: %d at %d", rounds+1, r.Version, i)
			}
		}
	})
}

func TestAnnotationAuthorOnly(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		adminToken := f.acquire(f.admin, f.copy)
		a, err := f.svc.CreateAnnotation(as(f.admin), f.copy.ID, adminToken, box())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.ReleaseLock(as(f.admin), f.copy.ID, adminToken); err != nil {
			t.Fatal(err)
		}
		token := f.acquire(f.teacher, f.copy)
		before := f.rows()
		_, err = f.svc.UpdateAnnotation(as(f.teacher), a.ID, token, 1, AnnotationPatch{Text: new("mine now")})
		wantCode(t, err, apperr.Forbidden, "change another's annotation")
		_, err = f.svc.DeleteAnnotation(as(f.teacher), a.ID, token, 1)
		wantCode(t, err, apperr.Forbidden, "delete another's annotation")
		f.assertUnchanged(before, "a refused change of another's annotation")

		// An admin may change the teacher's annotations.
		mine, err := f.svc.CreateAnnotation(as(f.teacher), f.copy.ID, token, box())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.ReleaseLock(as(f.teacher), f.copy.ID, token); err != nil {
			t.Fatal(err)
		}
		adminToken = f.acquire(f.admin, f.copy)
		if _, err := f.svc.UpdateAnnotation(as(f.admin), mine.ID, adminToken, 1, AnnotationPatch{Text: new("relu")}); err != nil {
			t.Fatalf("admin edit: %v", err)
		}
		if revs := revisions(t, f, mine.ID); revs[1].AuthorID != f.admin.ID {
			t.Fatal("the revision does not name who made the change")
		}
	})
}
