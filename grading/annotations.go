package grading

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/annotation"
	"github.com/korrigo/korrigo/ent/annotationrevision"
)

// Annotation limits (DESIGN.md §7). The text limit is in bytes, as the schema's
// MaxLen counts.
const (
	MaxAnnotationText   = 4000
	MaxAnnotationPoints = 100
	// geometryTolerance absorbs the float error of a client computing x+w from
	// pixels (0.1+0.2 > 0.3), without letting a rectangle visibly leave the page.
	geometryTolerance = 1e-9
)

// AnnotationInput is a new annotation: a rectangle normalized to the page (origin
// top-left, 0 ≤ x,y; 0 < w,h; x+w ≤ 1; y+h ≤ 1) on page PageIndex (0-based).
type AnnotationInput struct {
	PageIndex  int
	X, Y, W, H float64
	Kind       annotation.Kind
	Text       string
	Points     *float64
}

// AnnotationPatch changes some fields of an annotation; nil fields are kept.
type AnnotationPatch struct {
	PageIndex  *int
	X, Y, W, H *float64
	Kind       *annotation.Kind
	Text       *string
	Points     PointsPatch
}

// PointsPatch is what a patch does to an annotation's points, which are nullable:
// the zero value keeps them, {Set: true} removes them, {Set: true, Value: &p}
// replaces them (GraphQL: absent, null, a value).
type PointsPatch struct {
	Set   bool
	Value *float64
}

// CreateAnnotation draws a new annotation on a copy under the caller's lease.
func (s *Service) CreateAnnotation(ctx context.Context, copyID, lockToken string, in AnnotationInput) (*ent.Annotation, error) {
	v, err := grader(ctx)
	if err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	var a *ent.Annotation
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		c, err := s.copyForGrading(ctx, tx, v, copyID, lockToken)
		if err != nil {
			return err
		}
		if err := checkPage(in.PageIndex, c.PageCount); err != nil {
			return err
		}
		now := s.clock()
		a, err = tx.Annotation.Create().
			SetCopyID(c.ID).
			SetPageIndex(in.PageIndex).
			SetX(in.X).SetY(in.Y).SetW(in.W).SetH(in.H).
			SetKind(in.Kind).
			SetText(in.Text).
			SetNillablePoints(in.Points).
			SetAuthorID(v.UserID).
			SetCreatedAt(now).
			SetUpdatedAt(now).
			Save(system(ctx))
		if err != nil {
			return fmt.Errorf("insert annotation: %w", err)
		}
		return s.revise(ctx, tx, a, annotationrevision.ActionCREATE, v, now)
	})
	if err != nil {
		return nil, fail(err, "create annotation on %s", copyID)
	}
	return a.Unwrap(), nil
}

// UpdateAnnotation applies patch to the annotation if it is still at version (the
// one the client last saw); otherwise VERSION_CONFLICT with the current version.
// Only its author or an admin may change it.
func (s *Service) UpdateAnnotation(ctx context.Context, id, lockToken string, version int, patch AnnotationPatch) (*ent.Annotation, error) {
	v, err := grader(ctx)
	if err != nil {
		return nil, err
	}
	if err := patch.validate(); err != nil {
		return nil, err
	}
	var a *ent.Annotation
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		cur, c, err := s.annotationForChange(ctx, tx, v, id, lockToken, version)
		if err != nil {
			return err
		}
		next := patch.applyTo(cur)
		if err := next.validate(); err != nil {
			return err
		}
		if err := checkPage(next.PageIndex, c.PageCount); err != nil {
			return err
		}
		now := s.clock()
		u := tx.Annotation.Update().
			Where(annotation.ID(id), annotation.Version(version), annotation.DeletedAtIsNil()).
			SetPageIndex(next.PageIndex).
			SetX(next.X).SetY(next.Y).SetW(next.W).SetH(next.H).
			SetKind(next.Kind).
			SetText(next.Text).
			AddVersion(1).
			SetUpdatedAt(now)
		if next.Points == nil {
			u.ClearPoints()
		} else {
			u.SetPoints(*next.Points)
		}
		n, err := u.Save(system(ctx))
		if err != nil {
			return fmt.Errorf("update annotation: %w", err)
		}
		if n == 0 {
			return s.annotationConflict(ctx, tx, id, version)
		}
		if a, err = tx.Annotation.Get(system(ctx), id); err != nil {
			return fmt.Errorf("read annotation: %w", err)
		}
		return s.revise(ctx, tx, a, annotationrevision.ActionUPDATE, v, now)
	})
	if err != nil {
		return nil, fail(err, "update annotation %s", id)
	}
	return a.Unwrap(), nil
}

// DeleteAnnotation soft-deletes the annotation if it is still at version, and
// returns its id. Its history stays.
func (s *Service) DeleteAnnotation(ctx context.Context, id, lockToken string, version int) (string, error) {
	v, err := grader(ctx)
	if err != nil {
		return "", err
	}
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		if _, _, err := s.annotationForChange(ctx, tx, v, id, lockToken, version); err != nil {
			return err
		}
		now := s.clock()
		n, err := tx.Annotation.Update().
			Where(annotation.ID(id), annotation.Version(version), annotation.DeletedAtIsNil()).
			SetDeletedAt(now).
			AddVersion(1).
			SetUpdatedAt(now).
			Save(system(ctx))
		if err != nil {
			return fmt.Errorf("delete annotation: %w", err)
		}
		if n == 0 {
			return s.annotationConflict(ctx, tx, id, version)
		}
		a, err := tx.Annotation.Get(system(ctx), id)
		if err != nil {
			return fmt.Errorf("read annotation: %w", err)
		}
		return s.revise(ctx, tx, a, annotationrevision.ActionDELETE, v, now)
	})
	if err != nil {
		return "", fail(err, "delete annotation %s", id)
	}
	return id, nil
}

// annotationForChange loads an annotation for a change by v from version: its
// copy locked and writable under v's lease, v its author or an admin, the
// annotation still at version and not deleted. The annotation is read before the
// copy is locked, which is enough: versions only grow, so this read is at least
// as recent as what the client saw, and a change made since is caught by the
// compare-and-set that follows.
func (s *Service) annotationForChange(ctx context.Context, tx *ent.Tx, v *viewer.Viewer, id, lockToken string, version int) (*ent.Annotation, *ent.ExamCopy, error) {
	a, err := tx.Annotation.Get(system(ctx), id)
	switch {
	case ent.IsNotFound(err):
		return nil, nil, apperr.NotFoundf("annotation %s not found", id)
	case err != nil:
		return nil, nil, fmt.Errorf("read annotation: %w", err)
	}
	c, err := s.copyForGrading(ctx, tx, v, a.CopyID, lockToken)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case a.AuthorID != v.UserID && !v.IsAdmin():
		return nil, nil, apperr.Forbiddenf("only its author or an admin may change annotation %s", id)
	case a.Version != version:
		return nil, nil, apperr.Conflict(a.Version, "annotation %s is at version %d, not %d: reload it", id, a.Version, version)
	case a.DeletedAt != nil:
		return nil, nil, apperr.NotFoundf("annotation %s was deleted", id)
	}
	return a, c, nil
}

// annotationConflict explains a failed compare-and-set.
func (s *Service) annotationConflict(ctx context.Context, tx *ent.Tx, id string, version int) error {
	a, err := tx.Annotation.Get(system(ctx), id)
	if err != nil {
		return fmt.Errorf("read annotation: %w", err)
	}
	return apperr.Conflict(a.Version, "annotation %s is at version %d, not %d: reload it", id, a.Version, version)
}

// revise appends the annotation's state after a change to its history.
func (s *Service) revise(ctx context.Context, tx *ent.Tx, a *ent.Annotation, action annotationrevision.Action, v *viewer.Viewer, at time.Time) error {
	snap, err := json.Marshal(snapshotOf(a))
	if err != nil {
		return fmt.Errorf("snapshot annotation: %w", err)
	}
	err = tx.AnnotationRevision.Create().
		SetAnnotationID(a.ID).
		SetVersion(a.Version).
		SetAction(action).
		SetSnapshot(snap).
		SetAuthorID(v.UserID).
		SetAt(at).
		Exec(system(ctx))
	if err != nil {
		return fmt.Errorf("record revision %d of annotation %s: %w", a.Version, a.ID, err)
	}
	return nil
}

// annotationSnapshot is the stored form of a revision (AnnotationRevision.snapshot).
type annotationSnapshot struct {
	ID        string          `json:"id"`
	CopyID    string          `json:"copyId"`
	PageIndex int             `json:"pageIndex"`
	X         float64         `json:"x"`
	Y         float64         `json:"y"`
	W         float64         `json:"w"`
	H         float64         `json:"h"`
	Kind      annotation.Kind `json:"kind"`
	Text      string          `json:"text"`
	Points    *float64        `json:"points"`
	AuthorID  string          `json:"authorId"`
	Version   int             `json:"version"`
	DeletedAt *time.Time      `json:"deletedAt,omitempty"`
}

func snapshotOf(a *ent.Annotation) annotationSnapshot {
	return annotationSnapshot{ID: a.ID, CopyID: a.CopyID, PageIndex: a.PageIndex, X: a.X, Y: a.Y, W: a.W, H: a.H,
		Kind: a.Kind, Text: a.Text, Points: a.Points, AuthorID: a.AuthorID, Version: a.Version, DeletedAt: a.DeletedAt}
}

func (in AnnotationInput) validate() error {
	if err := validKind(in.Kind); err != nil {
		return err
	}
	if err := validText(in.Text); err != nil {
		return err
	}
	if err := validPoints(in.Points); err != nil {
		return err
	}
	return in.checkGeometry()
}

// checkGeometry enforces the normalized rectangle; the page count is checked
// against the copy.
func (in AnnotationInput) checkGeometry() error {
	for _, f := range []struct {
		name  string
		value float64
	}{{"x", in.X}, {"y", in.Y}, {"w", in.W}, {"h", in.H}} {
		if math.IsNaN(f.value) || math.IsInf(f.value, 0) {
			return apperr.BadField(f.name, "%s must be a finite number", f.name)
		}
	}
	switch {
	case in.PageIndex < 0:
		return apperr.BadField("pageIndex", "pageIndex must not be negative")
	case in.X < 0:
		return apperr.BadField("x", "the rectangle must start on the page (x ≥ 0)")
	case in.Y < 0:
		return apperr.BadField("y", "the rectangle must start on the page (y ≥ 0)")
	case in.W <= 0:
		return apperr.BadField("w", "the rectangle must have a positive width")
	case in.H <= 0:
		return apperr.BadField("h", "the rectangle must have a positive height")
	case in.X+in.W > 1+geometryTolerance:
		return apperr.BadField("w", "the rectangle must end on the page (x + w ≤ 1)")
	case in.Y+in.H > 1+geometryTolerance:
		return apperr.BadField("h", "the rectangle must end on the page (y + h ≤ 1)")
	}
	return nil
}

// validate checks each field the patch sets; the rectangle it yields is checked
// once applied to the stored annotation.
func (p AnnotationPatch) validate() error {
	if p.Kind != nil {
		if err := validKind(*p.Kind); err != nil {
			return err
		}
	}
	if p.Text != nil {
		if err := validText(*p.Text); err != nil {
			return err
		}
	}
	if p.Points.Set {
		return validPoints(p.Points.Value)
	}
	return nil
}

// applyTo returns the annotation a would become.
func (p AnnotationPatch) applyTo(a *ent.Annotation) AnnotationInput {
	next := AnnotationInput{PageIndex: a.PageIndex, X: a.X, Y: a.Y, W: a.W, H: a.H, Kind: a.Kind, Text: a.Text, Points: a.Points}
	set := func(dst *float64, src *float64) {
		if src != nil {
			*dst = *src
		}
	}
	set(&next.X, p.X)
	set(&next.Y, p.Y)
	set(&next.W, p.W)
	set(&next.H, p.H)
	if p.PageIndex != nil {
		next.PageIndex = *p.PageIndex
	}
	if p.Kind != nil {
		next.Kind = *p.Kind
	}
	if p.Text != nil {
		next.Text = *p.Text
	}
	if p.Points.Set {
		next.Points = p.Points.Value
	}
	return next
}

func checkPage(pageIndex, pageCount int) error {
	if pageIndex >= pageCount {
		return apperr.BadField("pageIndex", "the copy has %d pages (pageIndex 0 to %d)", pageCount, pageCount-1)
	}
	return nil
}

func validKind(k annotation.Kind) error {
	if annotation.KindValidator(k) != nil {
		return apperr.BadField("kind", "unknown annotation kind %q", k)
	}
	return nil
}

func validText(t string) error {
	return checkText("text", t, MaxAnnotationText)
}

// checkText bounds a free text in bytes (the schema's MaxLen counts bytes) and
// refuses invalid UTF-8, which PostgreSQL would reject as an internal error.
func checkText(field, t string, limit int) error {
	if len(t) > limit || !utf8.ValidString(t) {
		return apperr.BadField(field, "%s must be UTF-8 text of at most %d bytes", field, limit)
	}
	return nil
}

func validPoints(p *float64) error {
	if p != nil && (math.IsNaN(*p) || math.Abs(*p) > MaxAnnotationPoints) {
		return apperr.BadField("points", "an annotation's points must be between -%d and %d", MaxAnnotationPoints, MaxAnnotationPoints)
	}
	return nil
}
