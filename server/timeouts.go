package server

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/korrigo/korrigo/server/filesign"
)

// HTTP server timeouts. DESIGN.md §12 names no variable for them: they are
// constants (README, "HTTP timeouts"), overridable through Config in tests.
const (
	// DefaultReadHeaderTimeout cuts clients that send headers slowly (slowloris).
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request; JSON bodies are ≤ 1 MB.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds a response, from the end of the headers: above
	// PostgreSQL's statement_timeout (30 s) so a slow query still answers.
	DefaultWriteTimeout = 60 * time.Second
	// DefaultIdleTimeout closes idle keep-alive connections.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultTransferTimeout is the read and write budget of an upload (50 MB at
	// 1 Mbit/s takes about 7 minutes) and of a PDF download.
	DefaultTransferTimeout = 15 * time.Minute
)

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// newHTTPServer is an HTTP server of this process (serve's, or a worker's
// metrics listener): every timeout set, the long-lived exceptions handled per
// request by withDeadlines.
func (a *App) newHTTPServer(base context.Context, h http.Handler) *http.Server {
	c := a.Config
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: orDefault(c.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(c.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      orDefault(c.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       orDefault(c.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
}

// withDeadlines lifts the server's read and write deadlines for the requests
// that legitimately outlive them:
//   - the GraphQL WebSocket upgrade: no deadline at all (the socket has its own
//     init timeout and ping/pong liveness check, websocket.go);
//   - multipart uploads to /graphql: reading and answering get TransferTimeout;
//   - file downloads: writing gets TransferTimeout.
//
// It must wrap the handler chain before anything reads the body. On writers
// without deadlines (tests' recorders) it does nothing.
func withDeadlines(transfer time.Duration, next http.Handler) http.Handler {
	transfer = orDefault(transfer, DefaultTransferTimeout)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		switch {
		case r.URL.Path == "/graphql" && isWebSocketUpgrade(r):
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
		case r.URL.Path == "/graphql" && r.Method == http.MethodPost && isMultipart(r):
			until := time.Now().Add(transfer)
			_ = rc.SetReadDeadline(until)
			_ = rc.SetWriteDeadline(until)
		case r.Method == http.MethodGet && (strings.HasPrefix(r.URL.Path, filesign.Path) ||
			strings.HasPrefix(r.URL.Path, filesign.ExportPath)):
			_ = rc.SetWriteDeadline(time.Now().Add(transfer))
		}
		next.ServeHTTP(w, r)
	})
}

func isWebSocketUpgrade(r *http.Request) bool {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}
