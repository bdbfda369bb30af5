package auth

import (
	"context"
	"fmt"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/ent"
)

// Audit actions written by this package. Other services add their own (exports,
// downloads, role changes) through Audit.
const (
	ActionLoginSucceeded       = "LOGIN_SUCCEEDED"
	ActionLoginFailed          = "LOGIN_FAILED"
	ActionLoginRateLimited     = "LOGIN_RATE_LIMITED"
	ActionLogout               = "LOGOUT"
	ActionPasswordChanged      = "PASSWORD_CHANGED"
	ActionPasswordChangeFailed = "PASSWORD_CHANGE_FAILED"
	ActionPasswordReset        = "PASSWORD_RESET"
	ActionUserCreated          = "USER_CREATED"
	ActionTokenCreated         = "TOKEN_CREATED"
	ActionTokenRevoked         = "TOKEN_REVOKED"
)

// Column sizes of AuditLog (ent/schema/event.go).
const (
	maxTargetLen = 200
	maxIPLen     = 64
	maxAgentLen  = 300
)

type clientIPKey struct{}

// WithClientIP returns ctx carrying the client's IP address, as resolved by the
// HTTP middleware (trusted proxies taken into account), for audit rows.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIPFromContext returns the IP stored by WithClientIP, or "".
func ClientIPFromContext(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

// Audit records a security event by the caller of ctx (anonymous when none),
// from the client IP of ctx. It writes outside any transaction: inside one, use
// AuditTx, since on SQLite a second connection would wait for the transaction's
// write lock.
func (s *Service) Audit(ctx context.Context, action, target string, meta map[string]any) error {
	return s.writeAudit(ctx, s.client, s.auditFromContext(ctx, action, target, meta))
}

// AuditTx is Audit inside the transaction tx, so that the event commits or rolls
// back with the change it describes.
func (s *Service) AuditTx(ctx context.Context, tx *ent.Tx, action, target string, meta map[string]any) error {
	return s.writeAudit(ctx, tx.Client(), s.auditFromContext(ctx, action, target, meta))
}

type auditEntry struct {
	actorID string // "" for anonymous
	action  string
	target  string
	ip      string
	meta    map[string]any
}

func (s *Service) auditFromContext(ctx context.Context, action, target string, meta map[string]any) auditEntry {
	e := auditEntry{action: action, target: target, ip: ClientIPFromContext(ctx), meta: meta}
	if v := viewer.FromContext(ctx); v != nil {
		e.actorID = v.UserID
		if v.TokenID != "" {
			// Tell integrations apart from people in the trail.
			e.meta = withMeta(meta, "apiTokenId", v.TokenID)
		}
	}
	return e
}

func withMeta(meta map[string]any, key string, value any) map[string]any {
	out := make(map[string]any, len(meta)+1)
	for k, v := range meta {
		out[k] = v
	}
	out[key] = value
	return out
}

func (s *Service) writeAudit(ctx context.Context, c *ent.Client, e auditEntry) error {
	create := c.AuditLog.Create().
		SetAction(e.action).
		SetTarget(truncate(e.target, maxTargetLen)).
		SetIP(truncate(e.ip, maxIPLen)).
		SetAt(s.now())
	if e.actorID != "" {
		create.SetActorID(e.actorID)
	}
	if e.meta != nil {
		create.SetMetadata(e.meta)
	}
	if err := create.Exec(rules.System(ctx)); err != nil {
		return fmt.Errorf("write audit %s: %w", e.action, err)
	}
	return nil
}
