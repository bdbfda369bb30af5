package auth

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/user"
)

// NewAccount is an account prepared outside any transaction: its temporary
// password is drawn and hashed (the slow part) before CreateAccountTx inserts
// it. TemporaryPassword is shown once to the admin who made it.
type NewAccount struct {
	Email             string
	Name              string
	Role              user.Role
	TemporaryPassword string
	hash              string
}

// PrepareTemporaryAccount validates an account's email and name and draws its
// temporary password, as resetUserPassword does. Admin only.
func (s *Service) PrepareTemporaryAccount(ctx context.Context, email, name string, role user.Role) (*NewAccount, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	email, err := validateEmail(email)
	if err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > maxNameLen {
		return nil, apperr.BadField("name", "the name must be 1 to %d characters long", maxNameLen)
	}
	if err := user.RoleValidator(role); err != nil {
		return nil, apperr.BadField("role", "unknown role %q", role)
	}
	password := generatePassword(email, name)
	hash, err := s.hasher.hash(ctx, password)
	if err != nil {
		return nil, fmt.Errorf("prepare account: %w", err)
	}
	return &NewAccount{Email: email, Name: name, Role: role, TemporaryPassword: password, hash: hash}, nil
}

// CreateAccountTx inserts a prepared account in tx, with a forced password
// change at first login, and its USER_CREATED audit row. A taken email is
// BAD_USER_INPUT (checked first: on PostgreSQL a failed insert would abort tx).
func (s *Service) CreateAccountTx(ctx context.Context, tx *ent.Tx, a *NewAccount, source string) (*ent.User, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	sys := rules.System(ctx)
	taken, err := tx.User.Query().Where(user.Email(a.Email)).Exist(sys)
	switch {
	case err != nil:
		return nil, fmt.Errorf("create account: %w", err)
	case taken:
		return nil, errEmailTaken
	}
	now := s.now()
	u, err := tx.User.Create().SetEmail(a.Email).SetName(a.Name).SetRole(a.Role).SetPasswordHash(a.hash).
		SetMustChangePassword(true).SetCreatedAt(now).SetUpdatedAt(now).Save(sys)
	switch {
	case ent.IsConstraintError(err):
		return nil, errEmailTaken
	case err != nil:
		return nil, fmt.Errorf("create account: %w", err)
	}
	if err := s.AuditTx(ctx, tx, ActionUserCreated, u.ID,
		map[string]any{"email": a.Email, "role": string(a.Role), "source": source}); err != nil {
		return nil, err
	}
	return u, nil
}
