package server

import (
	"context"
	"errors"
	"runtime/debug"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/server/httpctx"
	"github.com/korrigo/korrigo/server/wsgorilla"
)

// WebSocket defaults (DESIGN.md §10). KORRIGO_WS_INIT_TIMEOUT and
// KORRIGO_WS_PING_INTERVAL (Go durations) override them.
const (
	DefaultWSInitTimeout  = 10 * time.Second
	DefaultWSPingInterval = 25 * time.Second
	// DefaultWSAuthInterval bounds how long a socket outlives its credential
	// when no hint tells socketAuth sooner (expiry, a lost hint).
	DefaultWSAuthInterval = 30 * time.Second
	// wsReadLimit caps one client message: subscribe messages are small.
	wsReadLimit = 64 << 10
)

// websocketTransport serves subscriptions over gorilla/websocket at /graphql:
// both subprotocols, the graphql-ws close codes (wsgorilla), origin allow-list
// from KORRIGO_ALLOWED_ORIGINS (same-origin otherwise), init timeout, server
// pings on both subprotocols, a read limit. routes serves it detached from the
// upgrade request (wsgorilla.Detach): the socket gets a goroutine of its own
// and the HTTP chain returns. Shutdown: App.Serve cancels the server context,
// which closes every socket and ends every subscription.
func (a *App) websocketTransport() transport.Websocket {
	log := a.Log.Named("websocket")
	initTimeout, ping := a.Config.WSInitTimeout, a.Config.WSPingInterval
	limit := int64(wsReadLimit)
	return transport.Websocket{
		Implementation: wsgorilla.New(wsgorilla.Options{
			CheckOrigin: wsgorilla.AllowOrigins(a.Config.AllowedOrigins...),
			ReadLimit:   wsReadLimit,
			InitTimeout: initTimeout,
			// The adapter's timer pings both subprotocols (and drops a
			// graphql-transport-ws peer silent for 2 intervals); gqlgen's
			// own pingers would park two goroutines per connection.
			PingInterval: ping,
			OnProtocolClose: func(ctx context.Context, code int, reason string) {
				log.Info("websocket closed for a protocol violation", zap.Int("code", code), zap.String("reason", reason),
					zap.String("request_id", httpctx.RequestID(ctx)))
			},
		}),
		InitFunc: websocketInit(a.Services.Auth, log, a.sockets),
		// Zero: the adapter owns the init timer (4408). gqlgen's would add a
		// goroutine, two channels and a timer to every connection's start.
		PayloadReadLimit: &limit,
		ErrorFunc: func(ctx context.Context, err error) {
			log.Debug("websocket error", zap.Error(err), zap.String("request_id", httpctx.RequestID(ctx)))
		},
		// The access log line of a socket is written at the upgrade (101):
		// this is its end. gqlgen reports its own code when the adapter
		// closed first (OnProtocolClose logs the one on the wire).
		CloseFunc: func(ctx context.Context, code int) {
			f := []zap.Field{zap.String("request_id", httpctx.RequestID(ctx)), zap.Int("code", code)}
			if info := requestInfoFrom(ctx); info != nil {
				f = append(f, zap.Duration("duration", time.Since(info.start)))
			}
			if v := viewer.FromContext(ctx); v != nil {
				f = append(f, zap.String("user_id", v.UserID))
			}
			log.Info("websocket closed", f...)
		},
	}
}

// socketPanicked reports a panic on a socket's own goroutine (wsgorilla.Detach
// runs sockets outside the HTTP chain and its withRecover).
func (a *App) socketPanicked(ctx context.Context, p any) {
	a.Log.Error("websocket panic", zap.Any("panic", p), zap.String("request_id", httpctx.RequestID(ctx)),
		zap.ByteString("stack", debug.Stack()))
	a.reporter.panicked(ctx, p)
}

// errWSForbidden is what a rejected connection_init is told (close 4403).
var errWSForbidden = errors.New("Forbidden")

// websocketInit authenticates a socket from the connection_init payload
// ({"authorization": "Bearer <token>"}) or, without one, from what the upgrade
// request carried (session cookie or Authorization header, already checked by
// withIdentity). No valid identity → close 4403: every subscription needs one.
//
// The credential is re-checked for as long as the socket is open (socketAuth):
// at once after a logout, a password change or reset or a token revocation on
// any replica, and every WSAuthInterval for the rest (expiry, a deactivated
// account); an ended credential closes the socket with 4403.
func websocketInit(authn *auth.Service, log *zap.Logger, live *socketAuth) transport.WebsocketInitFunc {
	return func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		raw := strings.TrimSpace(p.Authorization())
		// gqlgen keeps the payload for the socket's life and hands it to
		// every operation: the credential is not left there.
		delete(p, "Authorization")
		delete(p, "authorization")
		if raw == "" {
			if v := viewer.FromContext(ctx); v != nil {
				live.watch(ctx, v)
				return ctx, nil, nil
			}
			return transport.WithWebsocketCloseCode(ctx, wsgorilla.CloseForbidden), nil, errWSForbidden
		}
		token := raw
		if len(raw) > 7 && strings.EqualFold(raw[:7], "bearer ") {
			token = strings.TrimSpace(raw[7:])
		}
		v, err := authn.Authenticate(ctx, token)
		if err != nil {
			if !apperr.HasCode(err, apperr.Unauthenticated) {
				log.Error("websocket authenticate", zap.Error(err), zap.String("request_id", httpctx.RequestID(ctx)))
			}
			return transport.WithWebsocketCloseCode(ctx, wsgorilla.CloseForbidden), nil, errWSForbidden
		}
		live.watch(ctx, v)
		noteUser(ctx, v.UserID)
		return viewer.NewContext(ctx, v), nil, nil
	}
}
