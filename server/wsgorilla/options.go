package wsgorilla

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by New when the matching Options field is zero.
const (
	DefaultReadLimit        = 64 << 10
	DefaultInitTimeout      = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultCloseGrace       = time.Second
	DefaultReadBufferSize   = 512
)

// Options configures the adapter. The zero value is usable and safe: same-origin
// upgrades only, 64 KiB messages, 10 s to send connection_init.
type Options struct {
	// CheckOrigin decides whether a browser may open a socket from another
	// origin. Nil keeps gorilla's same-origin check (a request without an Origin
	// header, i.e. not from a browser, is accepted). Build it with AllowOrigins;
	// a func that returns true unconditionally re-opens cross-site WebSocket
	// hijacking of cookie sessions.
	CheckOrigin func(r *http.Request) bool

	// ReadLimit caps one client message in bytes (default 64 KiB). gqlgen's
	// PayloadReadLimit (1 MB by default) applies too; the smaller one wins.
	// A larger message closes the socket with 1009.
	ReadLimit int64

	// ReadBufferSize and WriteBufferSize size gorilla's I/O buffers (defaults:
	// 512 B and 4 KiB). Write buffers come from a pool, so idle connections
	// hold none; the read buffer is held for the life of the connection, and
	// larger messages are read through it in several steps. The buffers of
	// the hijacked HTTP connection are released after the upgrade.
	ReadBufferSize, WriteBufferSize int

	// PingInterval, if positive, makes the adapter keep connections alive
	// after connection_ack: graphql-transport-ws gets a ping every interval
	// and is dropped after two intervals without a pong; graphql-ws gets a
	// "ka" every interval. It replaces gqlgen's PingPongInterval and
	// KeepAlivePingInterval (leave those zero), which cost a goroutine per
	// connection; the adapter uses a timer.
	PingInterval time.Duration

	// HandshakeTimeout bounds writing the 101 response (default 10 s).
	HandshakeTimeout time.Duration

	// InitTimeout is how long a client has to send connection_init before the
	// socket is closed (4408 for graphql-transport-ws, 1002 for graphql-ws).
	// Default 10 s; negative disables. The adapter owns this timer: leave
	// transport.Websocket.InitTimeout zero or longer, otherwise gqlgen's own
	// timer may fire first and close with a plain 1002.
	InitTimeout time.Duration

	// WriteTimeout bounds each write, so a client that stops reading cannot
	// park gqlgen's writers forever (default 10 s). A timed-out write ends the
	// connection.
	WriteTimeout time.Duration

	// CloseGrace is how long the TCP connection stays half-open after a close
	// frame, so the client reads the close code before the kernel resets the
	// connection for unread input (default 1 s; negative closes at once).
	CloseGrace time.Duration

	// OnProtocolClose, if set, is called when the adapter itself closes a
	// socket because the client broke the subprotocol (4400, 4401, 4406, 4408,
	// 4409, 4429, …). gqlgen does not report failures before connection_ack
	// anywhere else, and its CloseFunc then receives its own code (1002 or
	// 1000), not the one on the wire: this is the hook for logs and metrics.
	OnProtocolClose func(r *http.Request, code int, reason string)
}

func (o Options) withDefaults() Options {
	if o.ReadLimit <= 0 {
		o.ReadLimit = DefaultReadLimit
	}
	if o.InitTimeout == 0 {
		o.InitTimeout = DefaultInitTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = DefaultReadBufferSize
	}
	if o.CloseGrace == 0 {
		o.CloseGrace = DefaultCloseGrace
	}
	return o
}

// AllowOrigins returns a CheckOrigin that accepts requests without an Origin
// header (non-browser clients), same-origin requests, and the listed origins
// ("https://app.example.org", compared on scheme and host, case-insensitively).
// Entries that do not parse as scheme://host are ignored.
func AllowOrigins(origins ...string) func(*http.Request) bool {
	allowed := make(map[string]struct{}, len(origins))
	for _, o := range origins {
		if key, ok := originKey(o); ok {
			allowed[key] = struct{}{}
		}
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" {
			return true
		}
		key, ok := originKey(origin)
		if !ok {
			return false
		}
		if _, ok := allowed[key]; ok {
			return true
		}
		// Same origin: the scheme is not visible behind a proxy, so compare
		// hosts as gorilla's default does.
		u, _ := url.Parse(origin)
		return strings.EqualFold(u.Host, r.Host)
	}
}

func originKey(origin string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(origin))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", false
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), true
}
