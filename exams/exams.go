// Package exams is the exam office's service: exams, their marking scheme, their
// correctors, soft deletion. Admin only.
package exams

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/exam"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/grading/scheme"
)

// Service manages exams.
type Service struct {
	client *ent.Client
	log    *zap.Logger
}

// NewService returns the exam service.
func NewService(client *ent.Client, logger *zap.Logger) *Service {
	return &Service{client: client, log: logger}
}

// CreateInput is what an admin gives to create an exam.
type CreateInput struct {
	Name                string
	Date                string
	PagesPerBooklet     int
	RequireAppreciation bool
}

// UpdateInput changes the given fields only.
type UpdateInput struct {
	Name                *string
	Date                *string
	PagesPerBooklet     *int
	RequireAppreciation *bool
}

// admin checks the caller is an admin allowed to write, and returns a context in
// which the service reads on its own behalf.
func admin(ctx context.Context) (context.Context, *viewer.Viewer, error) {
	v := viewer.FromContext(ctx)
	switch {
	case v == nil:
		return nil, nil, apperr.Unauthenticatedf("sign in first")
	case !v.IsAdmin() || !v.CanWrite():
		return nil, nil, apperr.Forbiddenf("only the exam office can manage exams")
	}
	return rules.System(ctx), v, nil
}

func validName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return "", apperr.BadField("name", "the name must have 1 to 200 characters")
	}
	return name, nil
}

func validDate(d string) error {
	if _, err := time.Parse(time.DateOnly, d); err != nil {
		return apperr.BadField("date", "the date must be YYYY-MM-DD, got %q", d)
	}
	return nil
}

func validPages(n int) error {
	if n < 1 || n > 64 {
		return apperr.BadField("pagesPerBooklet", "pages per booklet must be between 1 and 64")
	}
	return nil
}

// Create makes an exam with an empty scheme.
func (s *Service) Create(ctx context.Context, in CreateInput) (*ent.Exam, error) {
	ctx, _, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	name, err := validName(in.Name)
	if err != nil {
		return nil, err
	}
	if err := validDate(in.Date); err != nil {
		return nil, err
	}
	if err := validPages(in.PagesPerBooklet); err != nil {
		return nil, err
	}
	e, err := s.client.Exam.Create().
		SetName(name).SetDate(in.Date).SetPagesPerBooklet(in.PagesPerBooklet).
		SetRequireAppreciation(in.RequireAppreciation).
		Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("create exam: %w", err)
	}
	return e, nil
}

// Update changes an exam's fields. Pages per booklet cannot change once copies exist:
// the split already used it.
func (s *Service) Update(ctx context.Context, id string, in UpdateInput) (*ent.Exam, error) {
	ctx, _, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	var out *ent.Exam
	err = db.WithTx(ctx, s.client, func(tx *ent.Tx) error {
		e, err := tx.Exam.Get(ctx, id)
		if err != nil {
			return notFound(err, id)
		}
		upd := tx.Exam.UpdateOne(e)
		if in.Name != nil {
			name, err := validName(*in.Name)
			if err != nil {
				return err
			}
			upd.SetName(name)
		}
		if in.Date != nil {
			if err := validDate(*in.Date); err != nil {
				return err
			}
			upd.SetDate(*in.Date)
		}
		if in.PagesPerBooklet != nil && *in.PagesPerBooklet != e.PagesPerBooklet {
			if err := validPages(*in.PagesPerBooklet); err != nil {
				return err
			}
			n, err := tx.ExamCopy.Query().Where(examcopy.ExamID(id)).Count(ctx)
			if err != nil {
				return fmt.Errorf("count copies of %s: %w", id, err)
			}
			if n > 0 {
				return apperr.BadField("pagesPerBooklet", "the exam already has %d copies cut with %d pages per booklet", n, e.PagesPerBooklet)
			}
			upd.SetPagesPerBooklet(*in.PagesPerBooklet)
		}
		if in.RequireAppreciation != nil {
			upd.SetRequireAppreciation(*in.RequireAppreciation)
		}
		out, err = upd.Save(ctx)
		if err != nil {
			return fmt.Errorf("update exam %s: %w", id, err)
		}
		return nil
	})
	return unwrap(out, err)
}

// SetScheme replaces the marking scheme unless it is frozen: once a copy has been
// sent to finalization its PDF and grade depend on the scheme.
func (s *Service) SetScheme(ctx context.Context, id string, sc scheme.Scheme) (*ent.Exam, error) {
	ctx, _, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	if err := sc.Check(); err != nil {
		return nil, apperr.BadField("scheme", "%s", err.Error())
	}
	var out *ent.Exam
	err = db.WithTx(ctx, s.client, func(tx *ent.Tx) error {
		finalized, err := tx.ExamCopy.Query().Where(examcopy.ExamID(id),
			examcopy.StatusIn(examcopy.StatusGRADING_IN_PROGRESS, examcopy.StatusGRADED)).Exist(ctx)
		if err != nil {
			return fmt.Errorf("check finalized copies of %s: %w", id, err)
		}
		// The CAS on scheme_frozen_at makes a concurrent first finalization win.
		n, err := tx.Exam.Update().Where(exam.ID(id), exam.SchemeFrozenAtIsNil()).SetScheme(sc).Save(ctx)
		if err != nil {
			return fmt.Errorf("set scheme of %s: %w", id, err)
		}
		if n == 0 || finalized {
			if _, err := tx.Exam.Get(ctx, id); err != nil {
				return notFound(err, id)
			}
			return apperr.InvalidTransitionf("the marking scheme is frozen: copies of this exam have been finalized")
		}
		out, err = tx.Exam.Get(ctx, id)
		return err
	})
	return unwrap(out, err)
}

// SetCorrectors replaces the exam's correctors; each must be an active teacher or admin.
func (s *Service) SetCorrectors(ctx context.Context, id string, userIDs []string) (*ent.Exam, error) {
	ctx, _, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	unique := map[string]bool{}
	for _, u := range userIDs {
		unique[u] = true
	}
	var out *ent.Exam
	err = db.WithTx(ctx, s.client, func(tx *ent.Tx) error {
		if _, err := tx.Exam.Get(ctx, id); err != nil {
			return notFound(err, id)
		}
		ids := make([]string, 0, len(unique))
		for u := range unique {
			ids = append(ids, u)
		}
		n, err := tx.User.Query().Where(user.IDIn(ids...), user.Active(true),
			user.RoleIn(user.RoleTEACHER, user.RoleADMIN)).Count(ctx)
		if err != nil {
			return fmt.Errorf("check correctors: %w", err)
		}
		if n != len(ids) {
			return apperr.BadField("userIds", "every corrector must be an active teacher or admin")
		}
		out, err = tx.Exam.UpdateOneID(id).ClearCorrectors().AddCorrectorIDs(ids...).Save(ctx)
		if err != nil {
			return fmt.Errorf("set correctors of %s: %w", id, err)
		}
		return nil
	})
	return unwrap(out, err)
}

// Delete hides an exam; nothing is removed from the database.
func (s *Service) Delete(ctx context.Context, id string) (*ent.Exam, error) {
	ctx, v, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.client.Exam.Update().Where(exam.ID(id), exam.DeletedAtIsNil()).
		SetDeletedAt(time.Now().UTC()).SetDeletedBy(v.UserID).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("delete exam %s: %w", id, err)
	}
	e, err := s.client.Exam.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, id)
	}
	if n == 0 {
		return nil, apperr.InvalidTransitionf("the exam is already deleted")
	}
	return e, nil
}

// Restore brings a deleted exam back.
func (s *Service) Restore(ctx context.Context, id string) (*ent.Exam, error) {
	ctx, _, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.client.Exam.Update().Where(exam.ID(id), exam.DeletedAtNotNil()).
		ClearDeletedAt().ClearDeletedBy().Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore exam %s: %w", id, err)
	}
	e, err := s.client.Exam.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, id)
	}
	if n == 0 {
		return nil, apperr.InvalidTransitionf("the exam is not deleted")
	}
	return e, nil
}

func notFound(err error, id string) error {
	if ent.IsNotFound(err) {
		return apperr.NotFoundf("no exam %s", id)
	}
	return fmt.Errorf("read exam %s: %w", id, err)
}

// unwrap detaches an exam read in a finished transaction, so resolvers that load
// its edges use the database, not the closed transaction.
func unwrap(e *ent.Exam, err error) (*ent.Exam, error) {
	if err != nil {
		return nil, err
	}
	return e.Unwrap(), nil
}
