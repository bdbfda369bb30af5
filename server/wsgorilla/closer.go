package wsgorilla

import (
	"context"
	"net/http"
	"sync"
)

type closerKey struct{}

// closer is filled by Accept with the connection served under a request.
type closer struct {
	mu sync.Mutex
	c  *conn
}

// Closable lets code that runs under a socket's request context (gqlgen's
// InitFunc and everything it derives, resolvers included) close that socket
// with a code of its choosing (Close). Wrap the handler that serves the
// WebSocket transport; other requests pass through untouched.
func Closable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), closerKey{}, &closer{})))
	})
}

// Close closes the socket served under ctx with code and reason (4403 for a
// session that ended, for instance), as the adapter closes on a protocol
// violation: the close frame goes out first, gqlgen then ends every
// subscription of the socket. It reports false when ctx carries no socket
// (no Closable, or the upgrade has not happened).
func Close(ctx context.Context, code int, reason string) bool {
	h, _ := ctx.Value(closerKey{}).(*closer)
	if h == nil {
		return false
	}
	h.mu.Lock()
	c := h.c
	h.mu.Unlock()
	if c == nil {
		return false
	}
	c.closeLocally(code, reason, false)
	return true
}

func registerCloser(ctx context.Context, c *conn) {
	if h, _ := ctx.Value(closerKey{}).(*closer); h != nil {
		h.mu.Lock()
		h.c = c
		h.mu.Unlock()
	}
}
