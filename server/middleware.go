package server

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/server/httpctx"
)

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

// withRequestID gives every request an id (a sane incoming X-Request-Id is kept,
// so a proxy's id links the logs) and echoes it in the response.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !requestIDRE.MatchString(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(httpctx.WithRequestID(r.Context(), id)))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer (WebSocket hijack).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Hijack hands the connection to the WebSocket upgrader: gorilla/websocket
// asserts http.Hijacker instead of using http.ResponseController.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	s.status = http.StatusSwitchingProtocols
	return http.NewResponseController(s.ResponseWriter).Hijack()
}

// withAccessLog logs one line per request with the request id, the user id
// and the GraphQL operation (name and root fields) when known; requests slower
// than slow (0: DefaultSlowRequest) are warnings.
func withAccessLog(log *zap.Logger, slow time.Duration, next http.Handler) http.Handler {
	slow = orDefault(slow, DefaultSlowRequest)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		ctx, info := withRequestInfo(r.Context(), start)
		next.ServeHTTP(rec, r.WithContext(ctx))
		d := time.Since(start)
		fields := []zap.Field{
			zap.String("request_id", httpctx.RequestID(r.Context())),
			zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("status", rec.status), zap.Int("bytes", rec.bytes), zap.Duration("duration", d),
		}
		fields = append(fields, info.logFields()...)
		switch {
		case d > slow:
			log.Warn("slow request", fields...)
		case r.URL.Path == "/healthz" || r.URL.Path == "/readyz":
			log.Debug("request", fields...)
		default:
			log.Info("request", fields...)
		}
	})
}

// withIdentity authenticates the caller from `Authorization: Bearer` or the
// session cookie and puts the viewer in the context. A bad bearer token is an
// error (the integrator must know); a stale cookie is just cleared.
func withIdentity(authn *auth.Service, secure bool, log *zap.Logger, rep *reporter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := auth.WithClientIP(r.Context(), clientIP(r))
		x := &httpctx.Exchange{Writer: w, Request: r, Secure: secure}
		ctx = httpctx.WithExchange(ctx, x)
		token, fromCookie := credentials(r)
		if token != "" {
			v, err := authn.Authenticate(ctx, token)
			switch {
			case err == nil:
				ctx = viewer.NewContext(ctx, v)
				noteUser(ctx, v.UserID)
			case fromCookie && apperr.HasCode(err, apperr.Unauthenticated):
				httpctx.SetSessionCookie(ctx, "", 0)
			case apperr.HasCode(err, apperr.Unauthenticated):
				writeError(w, http.StatusUnauthorized, apperr.CodeOf(err), "invalid or expired credentials")
				return
			default:
				log.Error("authenticate", zap.Error(err), zap.String("request_id", httpctx.RequestID(ctx)))
				rep.internal(ctx, fmt.Errorf("authenticate: %w", err))
				writeError(w, http.StatusInternalServerError, apperr.InternalError, "internal server error")
				return
			}
		}
		r = r.WithContext(ctx)
		x.Request = r
		next.ServeHTTP(w, r)
	})
}

func credentials(r *http.Request) (token string, fromCookie bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t), false
		}
	}
	if c, err := r.Cookie(httpctx.SessionCookie); err == nil && c.Value != "" {
		return c.Value, true
	}
	return "", false
}

// clientIP is the address withClientIP resolved (X-Forwarded-For from trusted
// proxies only), else the peer address.
func clientIP(r *http.Request) string {
	if ip, ok := r.Context().Value(clientIPKey{}).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// writeError answers outside GraphQL execution in the GraphQL error shape.
func writeError(w http.ResponseWriter, status int, code apperr.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": code}}},
	})
}
