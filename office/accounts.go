package office

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/student"
	"github.com/korrigo/korrigo/ent/user"
)

// AccountCreator makes user accounts with a temporary password (auth.Service
// implements it).
type AccountCreator interface {
	PrepareTemporaryAccount(ctx context.Context, email, name string, role user.Role) (*auth.NewAccount, error)
	CreateAccountTx(ctx context.Context, tx *ent.Tx, a *auth.NewAccount, source string) (*ent.User, error)
}

// SetAccounts sets who creates student accounts (importStudents createAccounts).
func (s *Service) SetAccounts(a AccountCreator) { s.accounts = a }

// StudentAccount is an account created by an import, with its temporary
// password: the only time it is shown.
type StudentAccount struct {
	Line              int
	Student           *ent.Student
	User              *ent.User
	TemporaryPassword string
}

// createAccounts gives a STUDENT account (forced password change, temporary
// password reported once) to every student of the file's valid rows that has
// an email and no account yet. One short transaction per account, so one
// refusal (email used by another user) costs only that account; every
// student left without one is in AccountErrors.
func (s *Service) createAccounts(ctx context.Context, rows []studentRow, report *StudentImportReport) error {
	if s.accounts == nil {
		return errors.New("create accounts: no account service")
	}
	report.Accounts, report.AccountErrors = []StudentAccount{}, []StudentImportError{}
	for _, r := range rows {
		refuse := func(msg string) {
			report.AccountErrors = append(report.AccountErrors, StudentImportError{Line: r.line, Field: "Adresse E-mail", Message: msg})
		}
		st, err := s.db.Client.Student.Query().
			Where(student.LastName(r.last), student.FirstName(r.first), student.BirthDate(r.birth)).Only(system(ctx))
		if err != nil {
			return fmt.Errorf("read student of line %d: %w", r.line, err)
		}
		switch {
		case st.UserID != nil:
			continue // already has an account
		case st.Email == nil:
			refuse("no e-mail address: no account created")
			continue
		}
		acc, err := s.accounts.PrepareTemporaryAccount(ctx, *st.Email, st.FirstName+" "+st.LastName, user.RoleSTUDENT)
		if err != nil {
			var typed *apperr.Error
			if errors.As(err, &typed) {
				refuse(typed.Message)
				continue
			}
			return err
		}
		var u *ent.User
		err = s.inTx(ctx, func(tx *ent.Tx) error {
			if u, err = s.accounts.CreateAccountTx(ctx, tx, acc, "importStudents"); err != nil {
				return err
			}
			n, err := tx.Student.Update().Where(student.ID(st.ID), student.UserIDIsNil()).SetUserID(u.ID).Save(system(ctx))
			switch {
			case err != nil:
				return fmt.Errorf("link account of %s: %w", st.ID, err)
			case n == 0:
				return apperr.BadInputf("the student got an account meanwhile")
			}
			return nil
		})
		var typed *apperr.Error
		switch {
		case errors.As(err, &typed):
			refuse(typed.Message)
			continue
		case err != nil:
			return err
		}
		st.UserID = &u.ID
		report.Accounts = append(report.Accounts, StudentAccount{Line: r.line, Student: st, User: u.Unwrap(),
			TemporaryPassword: acc.TemporaryPassword})
	}
	s.log.Info("student accounts created", zap.Int("accounts", len(report.Accounts)),
		zap.Int("refused", len(report.AccountErrors)))
	return nil
}
