package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/session"
	"github.com/korrigo/korrigo/ent/user"
)

// maxCredentialLen bounds what Authenticate looks up: both kinds of credential
// are under 50 characters, anything much longer is garbage.
const maxCredentialLen = 128

// errBadCredentials is the one answer to a wrong email, a wrong password and an
// inactive account, so that login does not tell which accounts exist.
var errBadCredentials = apperr.Unauthenticatedf("invalid email or password")

var errBadSession = apperr.Unauthenticatedf("the session is invalid or has expired; log in again")

// Login checks the credentials and opens a session. It returns the session
// token, shown once to the client: only its SHA-256 is stored.
func (s *Service) Login(ctx context.Context, email, password string, meta ClientMeta) (string, *ent.Session, *ent.User, error) {
	sys := rules.System(ctx)
	email = normalizeEmail(email)
	if meta.IP == "" {
		meta.IP = ClientIPFromContext(ctx)
	}
	key := LoginKey{Email: email, IP: meta.IP}
	unlock, err := s.logins.lock(ctx, key)
	if err != nil {
		return "", nil, nil, err
	}
	defer unlock()

	// Checked before the password, so a locked-out guesser learns nothing even
	// when the guess is right.
	wait, err := s.limiter.RetryAfter(ctx, key)
	if err != nil {
		return "", nil, nil, err
	}
	if wait > 0 {
		secs := int(math.Ceil(wait.Seconds()))
		if err := s.writeAudit(ctx, s.client, auditEntry{action: ActionLoginRateLimited, target: email, ip: meta.IP}); err != nil {
			return "", nil, nil, err
		}
		return "", nil, nil, apperr.New(apperr.RateLimited, "too many failed logins; try again in %d seconds", secs).
			With("retryAfter", secs)
	}

	u, err := s.client.User.Query().Where(user.Email(email)).Only(sys)
	if err != nil && !ent.IsNotFound(err) {
		return "", nil, nil, fmt.Errorf("login: find user: %w", err)
	}
	stored := ""
	if u != nil {
		stored = u.PasswordHash
	}
	// An unknown email is verified against a dummy hash: same cost, same answer.
	ok, stale, err := s.hasher.verify(ctx, password, stored)
	if err != nil {
		return "", nil, nil, fmt.Errorf("login: %w", err)
	}
	if u == nil || !ok || !u.Active {
		reason := "wrong_password"
		switch {
		case u == nil:
			reason = "unknown_email"
		case ok:
			reason = "inactive"
		}
		if err := s.writeAudit(ctx, s.client, auditEntry{
			action: ActionLoginFailed, target: email, ip: meta.IP,
			meta: map[string]any{"reason": reason, "userAgent": truncate(meta.UserAgent, maxAgentLen)},
		}); err != nil {
			return "", nil, nil, err
		}
		if err := s.limiter.Failed(ctx, key); err != nil {
			return "", nil, nil, err
		}
		return "", nil, nil, errBadCredentials
	}

	var newHash string
	if stale {
		// Costs were raised since this hash was made: upgrade it now that the
		// clear password is at hand.
		if newHash, err = s.hasher.hash(ctx, password); err != nil {
			return "", nil, nil, fmt.Errorf("login: rehash: %w", err)
		}
	}
	token := newSessionToken()
	now := s.now()
	var sess *ent.Session
	err = db.WithTx(sys, s.client, func(tx *ent.Tx) error {
		sess, err = tx.Session.Create().
			SetTokenHash(hashToken(token)).
			SetUserID(u.ID).
			SetCreatedAt(now).
			SetLastSeenAt(now).
			SetExpiresAt(minTime(now.Add(s.opts.SessionIdleTTL), now.Add(s.opts.SessionMaxAge))).
			SetAbsoluteExpiresAt(now.Add(s.opts.SessionMaxAge)).
			SetIP(truncate(meta.IP, maxIPLen)).
			SetUserAgent(truncate(meta.UserAgent, maxAgentLen)).
			Save(sys)
		if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		if newHash != "" {
			if err := tx.User.UpdateOneID(u.ID).SetPasswordHash(newHash).Exec(sys); err != nil {
				return fmt.Errorf("upgrade password hash: %w", err)
			}
		}
		return s.writeAudit(ctx, tx.Client(), auditEntry{
			actorID: u.ID, action: ActionLoginSucceeded, target: email, ip: meta.IP,
			meta: map[string]any{"sessionId": sess.ID, "userAgent": truncate(meta.UserAgent, maxAgentLen)},
		})
	})
	if err != nil {
		return "", nil, nil, fmt.Errorf("login: %w", err)
	}
	if err := s.limiter.Succeeded(ctx, key); err != nil {
		// The session exists; a limiter that cannot reset only delays a later lockout.
		s.log.Warn("login limiter reset failed", zap.Error(err))
	}
	sess.Edges.User = u
	return token, sess, u, nil
}

// Authenticate resolves a bearer or cookie credential: a session token, or an
// API token (recognised by its prefix). Anything invalid, expired, revoked or
// belonging to an inactive user is UNAUTHENTICATED.
func (s *Service) Authenticate(ctx context.Context, credential string) (*viewer.Viewer, error) {
	credential = strings.TrimSpace(credential)
	switch {
	case credential == "":
		return nil, apperr.Unauthenticatedf("authentication required")
	case len(credential) > maxCredentialLen:
		return nil, errBadSession
	case strings.HasPrefix(credential, APITokenPrefix):
		return s.authenticateAPIToken(ctx, credential)
	}
	return s.authenticateSession(ctx, credential)
}

// sessionRow is a session joined with its user: what a request needs to know
// about its caller, read in one statement (one round trip on every request).
type sessionRow struct {
	ID                 string     `sql:"id"`
	LastSeenAt         time.Time  `sql:"last_seen_at"`
	ExpiresAt          time.Time  `sql:"expires_at"`
	AbsoluteExpiresAt  time.Time  `sql:"absolute_expires_at"`
	RevokedAt          *time.Time `sql:"revoked_at"`
	UserID             string     `sql:"user_id"`
	Name               string     `sql:"user_name"`
	Role               string     `sql:"user_role"`
	Active             bool       `sql:"user_active"`
	MustChangePassword bool       `sql:"user_must_change_password"`
}

// withViewer makes a credential query (session, API token) select its own
// columns and, joined on fk, what a Viewer is made of from its user, named
// <prefix>_name, <prefix>_role, <prefix>_active and
// <prefix>_must_change_password: a credential authenticates in one statement
// with its user.
func withViewer(fk, prefix string, own ...string) func(*sql.Selector) {
	return func(q *sql.Selector) {
		u := sql.Table(user.Table).As("u")
		q.Join(u).On(q.C(fk), u.C(user.FieldID))
		cols := make([]string, 0, len(own)+4)
		for _, c := range own {
			cols = append(cols, q.C(c))
		}
		q.Select(append(cols,
			sql.As(u.C(user.FieldName), prefix+"_name"), sql.As(u.C(user.FieldRole), prefix+"_role"),
			sql.As(u.C(user.FieldActive), prefix+"_active"),
			sql.As(u.C(user.FieldMustChangePassword), prefix+"_must_change_password"))...)
	}
}

func (s *Service) authenticateSession(ctx context.Context, token string) (*viewer.Viewer, error) {
	var rows []sessionRow
	err := s.client.Session.Query().
		Where(session.TokenHash(hashToken(token))).
		Limit(2).
		Modify(withViewer(session.FieldUserID, "user", session.FieldID, session.FieldLastSeenAt,
			session.FieldExpiresAt, session.FieldAbsoluteExpiresAt, session.FieldRevokedAt, session.FieldUserID)).
		Scan(rules.System(ctx), &rows)
	switch {
	case err != nil:
		return nil, fmt.Errorf("authenticate session: %w", err)
	case len(rows) != 1: // none (token_hash is unique)
		return nil, errBadSession
	}
	sess, now := rows[0], s.now()
	if sess.RevokedAt != nil || !now.Before(sess.ExpiresAt) || !now.Before(sess.AbsoluteExpiresAt) || !sess.Active {
		return nil, errBadSession
	}
	if now.Sub(sess.LastSeenAt) >= s.opts.TouchInterval {
		s.touchSession(ctx, sess.ID, sess.AbsoluteExpiresAt, now)
	}
	return &viewer.Viewer{
		UserID:             sess.UserID,
		Name:               sess.Name,
		Role:               viewer.Role(sess.Role),
		SessionID:          sess.ID,
		MustChangePassword: sess.MustChangePassword,
	}, nil
}

// touchSession slides the expiry. The update is conditional so that concurrent
// requests of one session write once, and it never revives a session that was
// revoked or expired meanwhile. A failure only shortens the session: it is
// logged, not returned.
func (s *Service) touchSession(ctx context.Context, id string, absoluteExpires, now time.Time) {
	expires := minTime(now.Add(s.opts.SessionIdleTTL), absoluteExpires)
	_, err := s.client.Session.Update().
		Where(session.ID(id), session.RevokedAtIsNil(), session.ExpiresAtGT(now),
			session.LastSeenAtLTE(now.Add(-s.opts.TouchInterval))).
		SetLastSeenAt(now).
		SetExpiresAt(expires).
		Save(rules.System(ctx))
	if err != nil {
		s.log.Warn("renew session", zap.String("session", id), zap.Error(err))
	}
}

// Logout revokes the caller's session.
func (s *Service) Logout(ctx context.Context) error {
	v, err := requireViewer(ctx)
	if err != nil {
		return err
	}
	if v.SessionID == "" {
		return apperr.BadInputf("an API token has no session to end; revoke the token instead")
	}
	sys := rules.System(ctx)
	var n int
	err = db.WithTx(sys, s.client, func(tx *ent.Tx) error {
		n, err = tx.Session.Update().
			Where(session.ID(v.SessionID), session.RevokedAtIsNil()).
			SetRevokedAt(s.now()).
			Save(sys)
		if err != nil {
			return fmt.Errorf("logout: revoke session: %w", err)
		}
		if n == 0 {
			return nil // already ended by a concurrent logout
		}
		return s.AuditTx(ctx, tx, ActionLogout, v.SessionID, nil)
	})
	if err != nil {
		return err
	}
	if n > 0 {
		s.credentialsChanged(ctx, v.UserID)
	}
	return nil
}

// revokeSessions ends every live session of userID but keep (may be "").
func (s *Service) revokeSessions(ctx context.Context, tx *ent.Tx, userID, keep string, now time.Time) (int, error) {
	upd := tx.Session.Update().Where(session.UserID(userID), session.RevokedAtIsNil())
	if keep != "" {
		upd.Where(session.IDNEQ(keep))
	}
	n, err := upd.SetRevokedAt(now).Save(rules.System(ctx))
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of %s: %w", userID, err)
	}
	return n, nil
}

// newSessionToken returns a random session token that cannot be mistaken for an
// API token.
func newSessionToken() string {
	for {
		if t := randomSecret(); !strings.HasPrefix(t, APITokenPrefix) {
			return t
		}
	}
}

// hashToken is the stored form of a token. A fast hash is enough: tokens carry
// 256 random bits, so there is nothing to guess offline.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
