package grading

import (
	"context"
	"strings"
	"testing"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
)

// mutations are every grading write, on the fixture's copy, with its teacher's
// token and annotation.
func (f *fixture) mutations(token string, a *ent.Annotation) map[string]func(ctx context.Context) error {
	return map[string]func(ctx context.Context) error{
		"acquireLock":  func(ctx context.Context) error { _, err := f.svc.AcquireLock(ctx, f.copy.ID, nil); return err },
		"renewLock":    func(ctx context.Context) error { _, err := f.svc.RenewLock(ctx, f.copy.ID, token); return err },
		"releaseLock":  func(ctx context.Context) error { _, err := f.svc.ReleaseLock(ctx, f.copy.ID, token); return err },
		"breakLock":    func(ctx context.Context) error { _, err := f.svc.BreakLock(ctx, f.copy.ID); return err },
		"discardDraft": func(ctx context.Context) error { _, err := f.svc.DiscardDraft(ctx, f.copy.ID); return err },
		"saveDraft": func(ctx context.Context) error {
			_, err := f.svc.SaveDraft(ctx, f.copy.ID, "tab", rawJSON(`{}`), nil)
			return err
		},
		"createAnnotation": func(ctx context.Context) error {
			_, err := f.svc.CreateAnnotation(ctx, f.copy.ID, token, box())
			return err
		},
		"updateAnnotation": func(ctx context.Context) error {
			_, err := f.svc.UpdateAnnotation(ctx, a.ID, token, a.Version, AnnotationPatch{Text: new("x")})
			return err
		},
		"deleteAnnotation": func(ctx context.Context) error {
			_, err := f.svc.DeleteAnnotation(ctx, a.ID, token, a.Version)
			return err
		},
		"setQuestionScore": func(ctx context.Context) error {
			_, err := f.svc.SetQuestionScore(ctx, f.copy.ID, token, "q2", pts(1), nil)
			return err
		},
		"setAppreciation": func(ctx context.Context) error {
			_, err := f.svc.SetAppreciation(ctx, f.copy.ID, token, "x")
			return err
		},
		"finalizeCopy":  func(ctx context.Context) error { _, err := f.svc.FinalizeCopy(ctx, f.copy.ID, token); return err },
		"markCopyReady": func(ctx context.Context) error { _, err := f.svc.MarkCopyReady(ctx, f.copy.ID); return err },
	}
}

// Only the assigned corrector and admins grade a copy: another corrector of the
// exam, a student, a read-only token and an anonymous caller are refused every
// mutation, and nothing is written.
func TestAuthorization(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		token := f.ready()
		a, err := f.svc.CreateAnnotation(as(f.teacher), f.copy.ID, token, box())
		if err != nil {
			t.Fatal(err)
		}
		before := f.rows()
		callers := map[string]struct {
			ctx  context.Context
			code apperr.Code
		}{
			"another teacher":   {as(f.other), apperr.Forbidden},
			"a student":         {as(f.student), apperr.Forbidden},
			"a read-only token": {readOnly(f.teacher), apperr.Forbidden},
			"a read-only admin": {readOnly(f.admin), apperr.Forbidden},
			"anonymous":         {context.Background(), apperr.Unauthenticated},
		}
		for who, c := range callers {
			for name, write := range f.mutations(token, a) {
				wantCode(t, write(c.ctx), c.code, who+" → "+name)
			}
		}
		f.assertUnchanged(before, "refused callers")

		// Reads: the student and the other teacher do not see the copy.
		for _, ctx := range []context.Context{as(f.other), as(f.student)} {
			_, err := f.svc.Copy(ctx, f.copy.ID)
			wantCode(t, err, apperr.NotFound, "read an invisible copy")
			_, err = f.svc.Scores(ctx, f.copy.ID)
			wantCode(t, err, apperr.NotFound, "scores of an invisible copy")
		}
		if _, err := f.svc.Copy(context.Background(), f.copy.ID); apperr.CodeOf(err) != apperr.Unauthenticated {
			t.Fatalf("anonymous read: %v", err)
		}
		if c, err := f.svc.Copy(as(f.teacher), f.copy.ID); err != nil || c.ID != f.copy.ID {
			t.Fatalf("the corrector reads their copy: %v", err)
		}
	})
}

// A reassigned copy is no longer its former corrector's, and neither is a copy of
// a deleted exam.
func TestAuthorizationFollowsAssignment(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		token := f.acquire(f.teacher, f.copy)
		if _, err := d.Client.ExamCopy.UpdateOneID(f.copy.ID).SetAssignedCorrectorID(f.other.ID).Save(f.sys); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.SetAppreciation(as(f.teacher), f.copy.ID, token, "x")
		wantCode(t, err, apperr.Forbidden, "the former corrector's write")

		mine := f.newCopy("READY", f.teacher)
		if _, err := d.Client.Exam.UpdateOneID(f.exam.ID).SetDeletedAt(f.svc.clock()).Save(f.sys); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.AcquireLock(as(f.teacher), mine.ID, nil)
		wantCode(t, err, apperr.Forbidden, "a copy of a deleted exam")
	})
}

// Refused input is a typed error and writes nothing.
func TestBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		token := f.acquire(f.teacher, f.copy)
		a, err := f.svc.CreateAnnotation(as(f.teacher), f.copy.ID, token, box())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.SaveDraft(as(f.teacher), f.copy.ID, "tab", rawJSON(`{"v":1}`), nil); err != nil {
			t.Fatal(err)
		}
		ctx := as(f.teacher)
		before := f.rows()

		geometry := map[string]func(*AnnotationInput){
			"negative x":        func(in *AnnotationInput) { in.X = -0.01 },
			"negative y":        func(in *AnnotationInput) { in.Y = -0.01 },
			"zero width":        func(in *AnnotationInput) { in.W = 0 },
			"negative height":   func(in *AnnotationInput) { in.H = -0.1 },
			"past the right":    func(in *AnnotationInput) { in.X, in.W = 0.8, 0.21 },
			"past the bottom":   func(in *AnnotationInput) { in.Y, in.H = 0.95, 0.1 },
			"NaN":               func(in *AnnotationInput) { in.X = nan() },
			"page past the end": func(in *AnnotationInput) { in.PageIndex = 4 },
			"negative page":     func(in *AnnotationInput) { in.PageIndex = -1 },
			"unknown kind":      func(in *AnnotationInput) { in.Kind = "SCRIBBLE" },
			"long text":         func(in *AnnotationInput) { in.Text = strings.Repeat("é", MaxAnnotationText/2+1) },
			"too many points":   func(in *AnnotationInput) { in.Points = pts(101) },
		}
		for name, spoil := range geometry {
			in := box()
			spoil(&in)
			_, err := f.svc.CreateAnnotation(ctx, f.copy.ID, token, in)
			wantCode(t, err, apperr.BadUserInput, "create: "+name)
		}
		for name, patch := range map[string]AnnotationPatch{
			"off the page": {X: pts(0.9)},
			"to page 4":    {PageIndex: new(4)},
			"infinite h":   {H: pts(inf())},
			"bad points":   {Points: PointsPatch{Set: true, Value: pts(-200)}},
		} {
			_, err := f.svc.UpdateAnnotation(ctx, a.ID, token, 1, patch)
			wantCode(t, err, apperr.BadUserInput, "update: "+name)
		}

		_, err = f.svc.SaveDraft(ctx, f.copy.ID, "tab", rawJSON(`{"s":"`+strings.Repeat("x", 300<<10)+`"}`), nil)
		wantCode(t, err, apperr.PayloadTooLarge, "a 300 KiB draft")
		_, err = f.svc.SaveDraft(ctx, f.copy.ID, "tab", rawJSON(`{"unterminated":`), nil)
		wantCode(t, err, apperr.BadUserInput, "a draft that is not JSON")
		for _, id := range []string{"", strings.Repeat("t", MaxClientID+1)} {
			_, err = f.svc.SaveDraft(ctx, f.copy.ID, id, rawJSON(`{}`), nil)
			wantCode(t, err, apperr.BadUserInput, "clientId "+id)
		}
		_, err = f.svc.SetQuestionScore(ctx, f.copy.ID, token, "nope", pts(1), nil)
		wantCode(t, err, apperr.BadUserInput, "unknown question")
		_, err = f.svc.SetQuestionScore(ctx, f.copy.ID, token, "q2", pts(-1), nil)
		wantCode(t, err, apperr.BadUserInput, "negative points")
		_, err = f.svc.SetQuestionScore(ctx, f.copy.ID, token, "q2", pts(10.5), nil)
		wantCode(t, err, apperr.BadUserInput, "points above the question")

		// Unknown ids, for the corrector and for an admin.
		const unknown = "cpy_00000000000000000000000000"
		for _, u := range []*ent.User{f.teacher, f.admin} {
			for name, write := range map[string]func() error{
				"acquireLock":  func() error { _, err := f.svc.AcquireLock(as(u), unknown, nil); return err },
				"saveDraft":    func() error { _, err := f.svc.SaveDraft(as(u), unknown, "tab", rawJSON(`{}`), nil); return err },
				"discardDraft": func() error { _, err := f.svc.DiscardDraft(as(u), unknown); return err },
				"createAnnotation": func() error {
					_, err := f.svc.CreateAnnotation(as(u), unknown, token, box())
					return err
				},
				"updateAnnotation": func() error {
					_, err := f.svc.UpdateAnnotation(as(u), "ann_00000000000000000000000000", token, 1, AnnotationPatch{})
					return err
				},
				"deleteAnnotation": func() error {
					_, err := f.svc.DeleteAnnotation(as(u), "ann_00000000000000000000000000", token, 1)
					return err
				},
				"setQuestionScore": func() error {
					_, err := f.svc.SetQuestionScore(as(u), unknown, token, "q2", pts(1), nil)
					return err
				},
				"setAppreciation": func() error { _, err := f.svc.SetAppreciation(as(u), unknown, token, "x"); return err },
				"finalizeCopy":    func() error { _, err := f.svc.FinalizeCopy(as(u), unknown, token); return err },
			} {
				wantCode(t, write(), apperr.NotFound, u.Name+" → "+name+" on an unknown id")
			}
		}
		f.assertUnchanged(before, "refused input")
	})
}

// Grading writes need the caller's own live lease.
func TestWritesNeedTheLease(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		adminToken := f.acquire(f.admin, f.copy)
		a, err := f.svc.CreateAnnotation(as(f.admin), f.copy.ID, adminToken, box())
		if err != nil {
			t.Fatal(err)
		}
		before := f.rows()
		for _, token := range []string{"", "forged", adminToken} { // the admin's token is not the teacher's lease
			for name, write := range f.mutations(token, a) {
				switch name {
				case "createAnnotation", "setQuestionScore", "setAppreciation", "finalizeCopy":
					wantCode(t, write(as(f.teacher)), apperr.LockRequired, name+" with token "+token)
				}
			}
		}
		f.assertUnchanged(before, "writes without the lease")
	})
}
