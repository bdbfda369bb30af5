package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/apitoken"
	"github.com/korrigo/korrigo/ent/user"
)

// APITokenPrefix starts every API token secret: Authenticate looks it up in the
// right table, and secret scanners can recognise a leaked one.
const APITokenPrefix = "kgt_"

// tokenDisplayLen is how much of the secret is kept in clear to tell tokens apart.
const tokenDisplayLen = 8

const maxTokenNameLen = 100

var errBadToken = apperr.Unauthenticatedf("the API token is invalid, expired or revoked")

// CreateAPIToken mints a token acting as the caller, for integrations. Admins and
// teachers may create them, from a login session; students have nothing to
// integrate. Scopes are among read and write (default read). The secret is
// returned once; only its SHA-256 is stored.
func (s *Service) CreateAPIToken(ctx context.Context, name string, scopes []string, expiresAt *time.Time) (string, *ent.ApiToken, error) {
	v, err := requireSession(ctx)
	if err != nil {
		return "", nil, err
	}
	switch {
	case v.MustChangePassword:
		return "", nil, errMustChangePassword
	case !v.IsAdmin() && !v.IsTeacher():
		return "", nil, apperr.Forbiddenf("only admins and teachers can create API tokens")
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > maxTokenNameLen {
		return "", nil, apperr.BadField("name", "the token name must be 1 to %d characters long", maxTokenNameLen)
	}
	scopes, err = normalizeScopes(scopes)
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	var expires *time.Time
	if expiresAt != nil {
		if !expiresAt.After(now) {
			return "", nil, apperr.BadField("expiresAt", "the expiry must be in the future")
		}
		e := expiresAt.UTC().Truncate(time.Microsecond)
		expires = &e
	}

	secret := APITokenPrefix + randomSecret()
	sys := rules.System(ctx)
	var tok *ent.ApiToken
	err = db.WithTx(sys, s.client, func(tx *ent.Tx) error {
		tok, err = tx.ApiToken.Create().
			SetName(name).
			SetTokenHash(hashToken(secret)).
			SetPrefix(secret[:tokenDisplayLen]).
			SetScopes(scopes).
			SetOwnerID(v.UserID).
			SetNillableExpiresAt(expires).
			SetCreatedAt(now).
			SetUpdatedAt(now).
			Save(sys)
		if err != nil {
			return fmt.Errorf("create API token: %w", err)
		}
		return s.AuditTx(ctx, tx, ActionTokenCreated, tok.ID, map[string]any{"name": name, "scopes": scopes})
	})
	if err != nil {
		return "", nil, err
	}
	return secret, tok, nil
}

// normalizeScopes validates and de-duplicates scopes, in a stable order.
func normalizeScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return []string{viewer.ScopeRead}, nil
	}
	var out []string
	for _, sc := range []string{viewer.ScopeRead, viewer.ScopeWrite} {
		if slices.Contains(scopes, sc) {
			out = append(out, sc)
		}
	}
	for _, sc := range scopes {
		if sc != viewer.ScopeRead && sc != viewer.ScopeWrite {
			return nil, apperr.BadField("scopes", "unknown scope %q (want read or write)", sc)
		}
	}
	return out, nil
}

// RevokeAPIToken revokes a token of the caller, or anyone's for an admin. A
// token the caller may not see is NOT_FOUND, so ids cannot be probed. Revoking
// a revoked token succeeds without a new audit row.
func (s *Service) RevokeAPIToken(ctx context.Context, id string) error {
	v, err := requireViewer(ctx)
	if err != nil {
		return err
	}
	if !v.CanWrite() {
		return apperr.Forbiddenf("this API token is read-only")
	}
	sys := rules.System(ctx)
	tok, err := s.client.ApiToken.Get(sys, id)
	switch {
	case ent.IsNotFound(err):
		return apperr.NotFoundf("API token not found")
	case err != nil:
		return fmt.Errorf("revoke API token: %w", err)
	case tok.OwnerID != v.UserID && !v.IsAdmin():
		return apperr.NotFoundf("API token not found")
	}
	var n int
	err = db.WithTx(sys, s.client, func(tx *ent.Tx) error {
		n, err = tx.ApiToken.Update().
			Where(apitoken.ID(id), apitoken.RevokedAtIsNil()).
			SetRevokedAt(s.now()).
			Save(sys)
		if err != nil {
			return fmt.Errorf("revoke API token: %w", err)
		}
		if n == 0 {
			return nil
		}
		return s.AuditTx(ctx, tx, ActionTokenRevoked, id, map[string]any{"ownerId": tok.OwnerID})
	})
	if err != nil {
		return err
	}
	if n > 0 {
		s.credentialsChanged(ctx, tok.OwnerID)
	}
	return nil
}

// APITokens lists the caller's tokens, or every token for an admin, newest first.
func (s *Service) APITokens(ctx context.Context) ([]*ent.ApiToken, error) {
	v, err := requireViewer(ctx)
	if err != nil {
		return nil, err
	}
	q := s.client.ApiToken.Query().Order(ent.Desc(apitoken.FieldCreatedAt), ent.Desc(apitoken.FieldID))
	if !v.IsAdmin() {
		q.Where(apitoken.OwnerID(v.UserID))
	}
	toks, err := q.All(rules.System(ctx))
	if err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	return toks, nil
}

// tokenRow is an API token joined with its owner, read in one statement.
type tokenRow struct {
	ID                 string     `sql:"id"`
	Scopes             []byte     `sql:"scopes"`
	ExpiresAt          *time.Time `sql:"expires_at"`
	LastUsedAt         *time.Time `sql:"last_used_at"`
	RevokedAt          *time.Time `sql:"revoked_at"`
	OwnerID            string     `sql:"owner_id"`
	Name               string     `sql:"owner_name"`
	Role               string     `sql:"owner_role"`
	Active             bool       `sql:"owner_active"`
	MustChangePassword bool       `sql:"owner_must_change_password"`
}

func (s *Service) authenticateAPIToken(ctx context.Context, secret string) (*viewer.Viewer, error) {
	var rows []tokenRow
	err := s.client.ApiToken.Query().
		Where(apitoken.TokenHash(hashToken(secret))).
		Limit(2).
		Modify(withViewer(apitoken.FieldOwnerID, "owner", apitoken.FieldID, apitoken.FieldScopes,
			apitoken.FieldExpiresAt, apitoken.FieldLastUsedAt, apitoken.FieldRevokedAt, apitoken.FieldOwnerID)).
		Scan(rules.System(ctx), &rows)
	switch {
	case err != nil:
		return nil, fmt.Errorf("authenticate API token: %w", err)
	case len(rows) != 1: // none (token_hash is unique)
		return nil, errBadToken
	}
	tok, now := rows[0], s.now()
	// A token outlives no change to its owner: deactivation, or demotion to a
	// role that may not hold tokens.
	if tok.RevokedAt != nil || (tok.ExpiresAt != nil && !now.Before(*tok.ExpiresAt)) ||
		!tok.Active || user.Role(tok.Role) == user.RoleSTUDENT {
		return nil, errBadToken
	}
	var scopes []string
	if err := json.Unmarshal(tok.Scopes, &scopes); len(tok.Scopes) > 0 && err != nil {
		return nil, fmt.Errorf("authenticate API token: scopes of %s: %w", tok.ID, err)
	}
	if tok.LastUsedAt == nil || now.Sub(*tok.LastUsedAt) >= s.opts.TouchInterval {
		s.touchToken(ctx, tok.ID, now)
	}
	return &viewer.Viewer{
		UserID:             tok.OwnerID,
		Name:               tok.Name,
		Role:               viewer.Role(tok.Role),
		TokenID:            tok.ID,
		Scopes:             scopes,
		MustChangePassword: tok.MustChangePassword,
	}, nil
}

// touchToken records the token's use at most once per TouchInterval, with a
// conditional update so that a burst of requests writes once.
func (s *Service) touchToken(ctx context.Context, id string, now time.Time) {
	_, err := s.client.ApiToken.Update().
		Where(apitoken.ID(id), apitoken.Or(apitoken.LastUsedAtIsNil(), apitoken.LastUsedAtLTE(now.Add(-s.opts.TouchInterval)))).
		SetLastUsedAt(now).
		Save(rules.System(ctx))
	if err != nil {
		s.log.Warn("record API token use", zap.String("token", id), zap.Error(err))
	}
}
