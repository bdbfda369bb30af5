package wsgorilla

import (
	"context"
	"fmt"
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
	// DefaultReadBufferSize is gorilla's minimum (a control frame's
	// payload): clients mostly send pongs, and a subscribe message costs
	// a few more reads, where a larger buffer would be held by every idle
	// socket.
	DefaultReadBufferSize = 125
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
	// 125 B and 4 KiB). Write buffers come from a pool, so idle connections
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
	// connection. The deadline moves at most every WriteTimeout/10, so a
	// write gets between 9/10 of it and all of it.
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
	// ctx is the upgrade request's.
	OnProtocolClose func(ctx context.Context, code int, reason string)
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
// header (non-browser clients), same-origin requests, and the listed origins.
// An entry is (see ParseOrigin):
//
//	https://app.example.org       that origin (scheme and host:port, case-insensitively)
//	https://*.example.org         any subdomain of example.org, same scheme and port
//	*                             any origin
//
// The wildcard forms are for development: they re-open cross-site WebSocket
// hijacking of cookie sessions to every matching site, and server.Config
// refuses them in production. Entries ParseOrigin rejects are ignored (the
// configuration refuses them before it gets here).
func AllowOrigins(origins ...string) func(*http.Request) bool {
	var allowed []originPattern
	for _, o := range origins {
		if p, err := parseOrigin(o); err == nil {
			allowed = append(allowed, p)
		}
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" {
			return true
		}
		u, err := url.Parse(origin)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return false
		}
		for _, p := range allowed {
			if p.matches(u) {
				return true
			}
		}
		// Same origin: the scheme is not visible behind a proxy, so compare
		// hosts as gorilla's default does.
		return strings.EqualFold(u.Host, r.Host)
	}
}

// ParseOrigin checks one allow-list entry: "scheme://host[:port]" (http or
// https, nothing after the host), "scheme://*.domain[:port]", or "*".
// wildcard reports the last two forms.
func ParseOrigin(entry string) (wildcard bool, err error) {
	p, err := parseOrigin(entry)
	return p.any || p.subdomains, err
}

type originPattern struct {
	any        bool   // "*"
	subdomains bool   // host is the domain under "*."
	scheme     string // lower case
	host       string // lower case, without port
	port       string
}

func parseOrigin(entry string) (originPattern, error) {
	entry = strings.TrimSpace(entry)
	if entry == "*" {
		return originPattern{any: true}, nil
	}
	bad := func(why string) (originPattern, error) {
		return originPattern{}, fmt.Errorf("%q is not an origin (%s)", entry, why)
	}
	scheme, rest, ok := strings.Cut(entry, "://")
	scheme = strings.ToLower(scheme)
	if !ok || (scheme != "http" && scheme != "https") {
		return bad("want http://host or https://host")
	}
	p := originPattern{scheme: scheme}
	if after, ok := strings.CutPrefix(rest, "*."); ok {
		p.subdomains, rest = true, after
	}
	if strings.ContainsAny(rest, "*/?#@ ") {
		return bad("a wildcard may only be a leading \"*.\" label, and nothing may follow the host")
	}
	u, err := url.Parse(scheme + "://" + rest)
	if err != nil || u.Hostname() == "" {
		return bad("no host")
	}
	p.host, p.port = strings.ToLower(u.Hostname()), u.Port()
	if strings.HasPrefix(p.host, ".") || strings.HasSuffix(p.host, ".") || strings.Contains(p.host, "..") {
		return bad("empty label in the host")
	}
	if p.subdomains && !strings.Contains(p.host, ".") {
		return bad("\"*.\" needs a domain with a dot under it")
	}
	return p, nil
}

func (p originPattern) matches(u *url.URL) bool {
	if p.any {
		return true
	}
	if strings.ToLower(u.Scheme) != p.scheme || u.Port() != p.port {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if p.subdomains {
		return strings.HasSuffix(host, "."+p.host)
	}
	return host == p.host
}
