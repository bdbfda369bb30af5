// Package httpctx lets resolvers reach the HTTP exchange they run in (to set the
// session cookie at login) and carries the request id, without importing server.
package httpctx

import (
	"context"
	"net/http"
)

type exchangeKey struct{}
type requestIDKey struct{}

// Exchange is the HTTP side of a request.
type Exchange struct {
	Writer  http.ResponseWriter // nil over WebSocket
	Request *http.Request       // nil over WebSocket once upgraded
	Secure  bool                // cookies get the Secure flag
}

// WithExchange stores the HTTP exchange in ctx.
func WithExchange(ctx context.Context, x *Exchange) context.Context {
	return context.WithValue(ctx, exchangeKey{}, x)
}

// FromContext returns the HTTP exchange of ctx, or nil.
func FromContext(ctx context.Context) *Exchange {
	x, _ := ctx.Value(exchangeKey{}).(*Exchange)
	return x
}

// SessionCookie is the name of the session cookie.
const SessionCookie = "korrigo_session"

// SetSessionCookie sets (value != "") or clears the session cookie when the
// request came over HTTP.
func SetSessionCookie(ctx context.Context, value string, maxAge int) {
	x := FromContext(ctx)
	if x == nil || x.Writer == nil {
		return
	}
	if value == "" {
		maxAge = -1
	}
	http.SetCookie(x.Writer, &http.Cookie{
		Name: SessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: x.Secure,
	})
}

// WithRequestID stores the request id in ctx.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id of ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
