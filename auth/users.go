package auth

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/user"
)

// DefaultAdminEmail is the first admin's email when none is configured.
const DefaultAdminEmail = "admin@korrigo.local"

const (
	maxEmailLen = 254
	maxNameLen  = 200
)

// CreateUserInput describes a new account.
type CreateUserInput struct {
	Email string
	Name  string
	Role  user.Role
	// Password, when nil, leaves the account unable to log in until an admin
	// hands out a temporary password with ResetUserPassword.
	Password *string
}

// CreateUser creates an account. Admin only.
func (s *Service) CreateUser(ctx context.Context, in CreateUserInput) (*ent.User, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	return s.createUser(ctx, in, false, "api")
}

// CreateAdmin creates an admin account for the `korrigo createadmin` command,
// which runs with database access and no caller. An empty password is replaced
// by a generated one that must be changed at first login; the password set is
// returned so the command can print it.
func (s *Service) CreateAdmin(ctx context.Context, email, name, password string) (*ent.User, string, error) {
	if strings.TrimSpace(name) == "" {
		name = "Administrator"
	}
	generated := password == ""
	if generated {
		password = generatePassword(normalizeEmail(email), name)
	}
	u, err := s.createUser(ctx, CreateUserInput{Email: email, Name: name, Role: user.RoleADMIN, Password: &password}, generated, "cli")
	if err != nil {
		return nil, "", err
	}
	return u, password, nil
}

// EnsureFirstAdmin creates an admin when the database has none, so that a fresh
// install can be logged into. Without an email it uses DefaultAdminEmail;
// without a password it generates one, returned here (and only here) for the
// caller to print once, and to be changed at first login.
//
// Replicas starting together with the same configuration race on the unique
// email: the loser sees the violation, finds the winner's admin and reports
// created == false. Replicas configured with different emails could each create
// one; they are expected to share their configuration.
func (s *Service) EnsureFirstAdmin(ctx context.Context, email, password string) (created bool, adminEmail, adminPassword string, err error) {
	hasAdmin := func() (bool, error) {
		ok, err := s.client.User.Query().Where(user.RoleEQ(user.RoleADMIN)).Exist(rules.System(ctx))
		if err != nil {
			return false, fmt.Errorf("first admin: look for an admin: %w", err)
		}
		return ok, nil
	}
	if ok, err := hasAdmin(); err != nil || ok {
		return false, "", "", err
	}
	if strings.TrimSpace(email) == "" {
		email = DefaultAdminEmail
	}
	const name = "Administrator"
	generated := password == ""
	if generated {
		password = generatePassword(normalizeEmail(email), name)
	}
	u, err := s.createUser(ctx, CreateUserInput{Email: email, Name: name, Role: user.RoleADMIN, Password: &password}, generated, "first-admin")
	if errors.Is(err, errEmailTaken) {
		if ok, herr := hasAdmin(); herr != nil || ok {
			return false, "", "", herr
		}
		return false, "", "", fmt.Errorf("first admin: %s already belongs to a user who is not an admin", normalizeEmail(email))
	}
	if err != nil {
		return false, "", "", fmt.Errorf("first admin: %w", err)
	}
	if !generated {
		password = ""
	}
	return true, u.Email, password, nil
}

var errEmailTaken = apperr.BadField("email", "a user with this email already exists")

// createUser validates in and inserts the user with its audit row. The caller
// decided authorization.
func (s *Service) createUser(ctx context.Context, in CreateUserInput, mustChange bool, source string) (*ent.User, error) {
	email, err := validateEmail(in.Email)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > maxNameLen {
		return nil, apperr.BadField("name", "the name must be 1 to %d characters long", maxNameLen)
	}
	if err := user.RoleValidator(in.Role); err != nil {
		return nil, apperr.BadField("role", "unknown role %q", in.Role)
	}
	var hash string
	if in.Password != nil {
		if err := CheckPassword(*in.Password, email, name); err != nil {
			return nil, err
		}
		if hash, err = s.hasher.hash(ctx, *in.Password); err != nil {
			return nil, fmt.Errorf("create user: %w", err)
		}
	} else {
		// A valid hash of a secret nobody knows: logins fail the usual way, in
		// the usual time, until an admin sets a temporary password.
		if hash, err = s.hasher.hash(ctx, randomSecret()); err != nil {
			return nil, fmt.Errorf("create user: %w", err)
		}
		mustChange = true
	}

	sys := rules.System(ctx)
	now := s.now()
	var u *ent.User
	err = db.WithTx(sys, s.client, func(tx *ent.Tx) error {
		u, err = tx.User.Create().
			SetEmail(email).
			SetName(name).
			SetRole(in.Role).
			SetPasswordHash(hash).
			SetMustChangePassword(mustChange).
			SetCreatedAt(now).
			SetUpdatedAt(now).
			Save(sys)
		switch {
		case ent.IsConstraintError(err):
			return errEmailTaken
		case err != nil:
			return fmt.Errorf("create user: %w", err)
		}
		return s.AuditTx(ctx, tx, ActionUserCreated, u.ID,
			map[string]any{"email": email, "role": string(in.Role), "source": source})
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// ResetUserPassword replaces a user's password with a generated temporary one,
// returned once, that must be changed at next login. The user's sessions end.
// Admin only.
func (s *Service) ResetUserPassword(ctx context.Context, userID string) (string, *ent.User, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return "", nil, err
	}
	sys := rules.System(ctx)
	u, err := s.client.User.Get(sys, userID)
	switch {
	case ent.IsNotFound(err):
		return "", nil, apperr.NotFoundf("user not found")
	case err != nil:
		return "", nil, fmt.Errorf("reset password: find user: %w", err)
	}
	password := generatePassword(u.Email, u.Name)
	hash, err := s.hasher.hash(ctx, password)
	if err != nil {
		return "", nil, fmt.Errorf("reset password: %w", err)
	}
	now := s.now()
	var revoked int
	err = db.WithTx(sys, s.client, func(tx *ent.Tx) error {
		u, err = tx.User.UpdateOneID(userID).
			SetPasswordHash(hash).
			SetMustChangePassword(true).
			SetUpdatedAt(now).
			Save(sys)
		if err != nil {
			return fmt.Errorf("reset password: %w", err)
		}
		revoked, err = s.revokeSessions(ctx, tx, userID, "", now)
		if err != nil {
			return err
		}
		return s.AuditTx(ctx, tx, ActionPasswordReset, userID, map[string]any{"sessionsRevoked": revoked})
	})
	if err != nil {
		return "", nil, err
	}
	if revoked > 0 {
		s.credentialsChanged(ctx, userID)
	}
	return password, u, nil
}

// ChangePassword replaces the caller's password after checking the current one.
// The caller's session stays; every other session of the user ends, since a
// password change is how a user evicts someone who learnt the old one.
func (s *Service) ChangePassword(ctx context.Context, current, next string) error {
	v, err := requireSession(ctx)
	if err != nil {
		return err
	}
	sys := rules.System(ctx)
	u, err := s.client.User.Get(sys, v.UserID)
	if err != nil {
		return fmt.Errorf("change password: find user: %w", err)
	}
	ok, _, err := s.hasher.verify(ctx, current, u.PasswordHash)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	if !ok {
		if err := s.Audit(ctx, ActionPasswordChangeFailed, u.ID, nil); err != nil {
			return err
		}
		return apperr.BadField("currentPassword", "the current password is incorrect")
	}
	if normalize(next) == normalize(current) {
		return apperr.BadField("newPassword", "the new password must differ from the current one")
	}
	if err := checkPassword("newPassword", next, u.Email, u.Name); err != nil {
		return err
	}
	hash, err := s.hasher.hash(ctx, next)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	now := s.now()
	var revoked int
	err = db.WithTx(sys, s.client, func(tx *ent.Tx) error {
		if err := tx.User.UpdateOneID(u.ID).
			SetPasswordHash(hash).
			SetMustChangePassword(false).
			SetUpdatedAt(now).
			Exec(sys); err != nil {
			return fmt.Errorf("change password: %w", err)
		}
		revoked, err = s.revokeSessions(ctx, tx, u.ID, v.SessionID, now)
		if err != nil {
			return err
		}
		return s.AuditTx(ctx, tx, ActionPasswordChanged, u.ID, map[string]any{"sessionsRevoked": revoked})
	})
	if err != nil {
		return err
	}
	if revoked > 0 {
		s.credentialsChanged(ctx, u.ID)
	}
	return nil
}

// Me returns the caller's user, or nil when anonymous.
func (s *Service) Me(ctx context.Context) (*ent.User, error) {
	v := viewer.FromContext(ctx)
	if v == nil {
		return nil, nil
	}
	u, err := s.client.User.Get(rules.System(ctx), v.UserID)
	if err != nil {
		return nil, fmt.Errorf("me: %w", err)
	}
	return u, nil
}

// normalizeEmail is the stored form of an email: uniqueness and login are
// case-insensitive because every email is stored lower-cased.
func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// validateEmail returns the normalized email or BAD_USER_INPUT on "email".
func validateEmail(raw string) (string, error) {
	email := normalizeEmail(raw)
	bad := apperr.BadField("email", "%q is not a valid email address", truncate(raw, maxEmailLen))
	if email == "" || len(email) > maxEmailLen {
		return "", bad
	}
	addr, err := mail.ParseAddress(email)
	// Only a bare address: no display name, comments or angle brackets.
	if err != nil || addr.Address != email || addr.Name != "" {
		return "", bad
	}
	_, domain, _ := strings.Cut(email, "@")
	if domain == "" || strings.HasPrefix(domain, "[") {
		return "", bad
	}
	return email, nil
}
