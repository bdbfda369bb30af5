package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/getsentry/sentry-go"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/server/httpctx"
)

// Version is the release reported to Sentry: set it at build time with
// -ldflags "-X github.com/korrigo/korrigo/server.Version=v1.2.3"; otherwise
// the module version or the VCS revision of the build.
var Version = ""

// BuildVersion is Version, else what the Go toolchain recorded in the binary.
func BuildVersion() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return "devel"
	}
	return rev + dirty
}

// reporter sends internal errors and panics to Sentry (KORRIGO_SENTRY_DSN).
// A nil *reporter reports nothing. Each event carries the request id, the
// caller's opaque user id, the operation's root fields and the release, and
// nothing personal: no request (cookies, headers, body, variables), no email,
// no name (scrubEvent). Typed errors (NOT_FOUND, BAD_USER_INPUT, ...) are the
// caller's business and never reported.
type reporter struct {
	client *sentry.Client
	log    *zap.Logger
}

func newReporter(cfg Config, log *zap.Logger) (*reporter, error) {
	if cfg.SentryDSN == "" {
		return nil, nil
	}
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn:              cfg.SentryDSN,
		Release:          BuildVersion(),
		Environment:      cfg.Env,
		SendDefaultPII:   false,
		AttachStacktrace: true,
		Transport:        cfg.SentryTransport, // nil: Sentry's HTTP transport
		BeforeSend:       scrubEvent,
		BeforeBreadcrumb: func(*sentry.Breadcrumb, *sentry.BreadcrumbHint) *sentry.Breadcrumb { return nil },
		// ContextifyFrames would ship source lines around each frame when the
		// sources are on disk: file names and line numbers are enough.
		Integrations: func(in []sentry.Integration) []sentry.Integration {
			out := in[:0]
			for _, i := range in {
				if i.Name() != "ContextifyFrames" {
					out = append(out, i)
				}
			}
			return out
		},
	})
	if err != nil {
		return nil, fmt.Errorf("sentry: KORRIGO_SENTRY_DSN: %w", err)
	}
	return &reporter{client: client, log: log}, nil
}

// hub is a fresh hub over a scope describing the request of ctx.
func (r *reporter) hub(ctx context.Context) *sentry.Hub {
	scope := sentry.NewScope()
	if id := httpctx.RequestID(ctx); id != "" {
		scope.SetTag("request_id", id)
	}
	if v := viewer.FromContext(ctx); v != nil {
		scope.SetUser(sentry.User{ID: v.UserID})
	}
	if graphql.HasOperationContext(ctx) {
		name, typ := operationLabel(graphql.GetOperationContext(ctx))
		scope.SetTag("operation", name)
		scope.SetTag("operation_type", typ)
	}
	if fc := graphql.GetFieldContext(ctx); fc != nil {
		scope.SetTag("path", fc.Path().String())
	}
	return sentry.NewHub(r.client, scope)
}

// internal reports an error answered as INTERNAL_SERVER_ERROR (or HTTP 5xx).
func (r *reporter) internal(ctx context.Context, err error) {
	if r == nil || err == nil || errors.Is(err, errReported) {
		return
	}
	r.hub(ctx).CaptureException(err)
}

// panicked reports a recovered panic, with the stack of where it happened.
func (r *reporter) panicked(ctx context.Context, p any) {
	if r == nil {
		return
	}
	r.hub(ctx).Recover(p)
}

// flush waits for queued events (at shutdown).
func (r *reporter) flush(d time.Duration) {
	if r != nil {
		r.client.Flush(d)
	}
}

// errReported marks an error already sent (a panic the resolver recover
// function reported), so the error presenter does not send it twice.
var errReported = errors.New("reported")

var (
	emailRE  = regexp.MustCompile(`[^\s@"'<>(),;:]+@[^\s@"'<>(),;:]+\.[A-Za-z]{2,}`)
	bearerRE = regexp.MustCompile(`(?i)bearer\s+[^\s"',;]+`)
)

func scrubText(s string) string {
	return bearerRE.ReplaceAllString(emailRE.ReplaceAllString(s, "[email]"), "Bearer [token]")
}

// scrubEvent is Sentry's BeforeSend: whatever an integration or a future
// change adds, the event leaves without the HTTP request (cookies,
// Authorization, body, query string with file signatures), without user
// fields but the opaque id, without breadcrumbs or extras, and with emails and
// bearer tokens blanked out of messages.
func scrubEvent(ev *sentry.Event, _ *sentry.EventHint) *sentry.Event {
	ev.Request = nil
	ev.User = sentry.User{ID: ev.User.ID}
	ev.Breadcrumbs = nil
	delete(ev.Contexts, "request")
	ev.Message = scrubText(ev.Message)
	for i := range ev.Exception {
		ev.Exception[i].Value = scrubText(ev.Exception[i].Value)
	}
	if ev.Logger != "" {
		ev.Logger = scrubText(ev.Logger)
	}
	return ev
}

// withRecover answers a panic outside GraphQL execution (which gqlgen
// recovers itself) with a 500, logs and reports it. http.ErrAbortHandler is
// net/http's way to abort a response and passes through.
func withRecover(log *zap.Logger, rep *reporter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			ctx := r.Context()
			log.Error("handler panic", zap.Any("panic", p), zap.String("request_id", httpctx.RequestID(ctx)),
				zap.ByteString("stack", debug.Stack()))
			rep.panicked(ctx, p)
			writeError(w, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "internal server error")
		}()
		next.ServeHTTP(w, r)
	})
}
