// Package auth owns identity: password hashing and policy, login sessions, API
// tokens, user creation and password resets, the login lockout and the security
// audit log. Resolvers and the HTTP middleware call Service; the ent privacy rules
// (package auth/rules) then filter what the resulting viewer may read.
package auth

import (
	"context"
	"runtime"
	"time"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/ent"
)

// Options tune the service. Zero values take the documented defaults.
type Options struct {
	// SessionIdleTTL ends a session not used for this long (default 4h).
	SessionIdleTTL time.Duration
	// SessionMaxAge ends a session this long after login, however active (default 12h).
	SessionMaxAge time.Duration
	// TouchInterval is how often a session's expiry or a token's last use is
	// written back (default 1m): once per request would turn every read into a write.
	TouchInterval time.Duration
	// LoginMaxFailures failed logins per account and client IP within LoginWindow
	// lock that pair out (defaults 5 and 15m).
	LoginMaxFailures int
	LoginWindow      time.Duration
	// Limiter replaces the audit-log lockout (e.g. with a Redis one).
	Limiter LoginLimiter
	// Hash are the argon2id costs of new hashes (default DefaultHashParams).
	Hash HashParams
	// MaxConcurrentHashes bounds the argon2id computations running at once
	// (default 2×GOMAXPROCS): each takes Hash.Memory KiB, so a burst of logins
	// must queue rather than exhaust memory.
	MaxConcurrentHashes int
	// Now is the clock; tests inject one (default time.Now).
	Now func() time.Time
	// CredentialsChanged, when set, is called after a transaction that ended
	// some of userID's credentials (logout, password change or reset, API
	// token revocation) has committed, so that what holds those credentials
	// open (WebSockets, on every replica) can re-check them now rather than at
	// its next periodic check. It is a hint, called on the request path: it
	// must not fail the operation, and the database stays the truth.
	CredentialsChanged func(ctx context.Context, userID string)
}

func (o Options) withDefaults() Options {
	if o.SessionIdleTTL <= 0 {
		o.SessionIdleTTL = 4 * time.Hour
	}
	if o.SessionMaxAge <= 0 {
		o.SessionMaxAge = 12 * time.Hour
	}
	if o.TouchInterval <= 0 {
		o.TouchInterval = time.Minute
	}
	if o.LoginMaxFailures <= 0 {
		o.LoginMaxFailures = 5
	}
	if o.LoginWindow <= 0 {
		o.LoginWindow = 15 * time.Minute
	}
	if o.Hash == (HashParams{}) {
		o.Hash = DefaultHashParams
	}
	if o.MaxConcurrentHashes <= 0 {
		o.MaxConcurrentHashes = 2 * runtime.GOMAXPROCS(0)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Service is the auth service. It is safe for concurrent use.
type Service struct {
	client  *ent.Client
	log     *zap.Logger
	opts    Options
	limiter LoginLimiter
	logins  keyLocks
	hasher  *hasher
}

// NewService returns a service over client.
func NewService(client *ent.Client, logger *zap.Logger, opts Options) *Service {
	if logger == nil {
		logger = zap.NewNop()
	}
	opts = opts.withDefaults()
	s := &Service{
		client: client,
		log:    logger.Named("auth"),
		opts:   opts,
		hasher: newHasher(opts.Hash, opts.MaxConcurrentHashes),
	}
	s.limiter = opts.Limiter
	if s.limiter == nil {
		s.limiter = NewAuditLimiter(client, opts.LoginMaxFailures, opts.LoginWindow, s.now)
	}
	return s
}

// credentialsChanged runs the CredentialsChanged hook, if any. Call it only
// after the commit: a listener that re-reads before the commit would still
// find the credential valid and keep the socket open.
func (s *Service) credentialsChanged(ctx context.Context, userID string) {
	if s.opts.CredentialsChanged != nil {
		s.opts.CredentialsChanged(ctx, userID)
	}
}

// now is the service clock in UTC, truncated to the microsecond: SQLite compares
// times as text and PostgreSQL keeps microseconds, so every stored time must
// have one offset and one precision for comparisons to agree on both.
func (s *Service) now() time.Time {
	return s.opts.Now().UTC().Truncate(time.Microsecond)
}

// ClientMeta describes the client of a login, for the session and the audit log.
type ClientMeta struct {
	IP        string
	UserAgent string
}

// requireViewer returns the caller or UNAUTHENTICATED.
func requireViewer(ctx context.Context) (*viewer.Viewer, error) {
	v := viewer.FromContext(ctx)
	if v == nil {
		return nil, apperr.Unauthenticatedf("authentication required")
	}
	return v, nil
}

// requireSession returns the caller when it is a login session: changing
// passwords and minting tokens must not be possible with a (possibly leaked)
// API token, and a temporary password must be replaced first.
func requireSession(ctx context.Context) (*viewer.Viewer, error) {
	v, err := requireViewer(ctx)
	if err != nil {
		return nil, err
	}
	if v.SessionID == "" {
		return nil, apperr.Forbiddenf("this operation needs a login session, not an API token")
	}
	return v, nil
}

// requireAdmin returns the caller when it is an admin allowed to change data.
func requireAdmin(ctx context.Context) (*viewer.Viewer, error) {
	v, err := requireViewer(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case !v.IsAdmin():
		return nil, apperr.Forbiddenf("admin only")
	case !v.CanWrite():
		return nil, apperr.Forbiddenf("this API token is read-only")
	case v.MustChangePassword:
		return nil, errMustChangePassword
	}
	return v, nil
}

var errMustChangePassword = apperr.PasswordChangeRequired()

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence, so
// client-supplied strings fit their columns instead of failing validation.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
