package wsgorilla

import (
	"context"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
)

// gqlgenSubprotocols is what transport.Websocket.Do offers Accept (its
// supportedSubprotocols is unexported).
var gqlgenSubprotocols = []string{"graphql-ws", "graphql-transport-ws"}

type serverContextKey struct{}

// WithServerContext marks ctx, an http.Server's BaseContext, as the context
// whose end closes every socket served by Detach. Without it a detached socket
// ends only when it closes.
func WithServerContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, serverContextKey{}, ctx)
}

// Detach serves ws's sockets on goroutines of their own, so that the HTTP
// handler returns right after the upgrade.
//
// gqlgen runs a socket's read loop in the handler that accepted it, for the
// socket's whole life. That goroutine's stack then holds every middleware
// frame of the HTTP chain, and its heap net/http's per-request state: with
// thousands of idle sockets, most of their memory. Detach upgrades in the
// handler (hijacking needs its ResponseWriter), then runs gqlgen's transport
// on a fresh goroutine with a shallow stack.
//
// The socket keeps the request's context values; its cancellation comes from
// the server context (WithServerContext) instead of the request, which
// net/http cancels when the handler returns. It ends when the socket's loop
// returns, so what watches it (context.AfterFunc, gqlgen's closeOnCancel)
// still sees the socket close.
//
// gqlgen reads the request when the socket starts (its context and headers)
// and keeps the headers for the socket's life: it gets a copy with the
// request line and the peer only, no headers (cookies and a browser's dozen
// others; what the HTTP chain needed of them is in the context by then) and
// no body (the body reader of a handler chain usually holds its
// ResponseWriter). Detach keeps no reference to any request: with Upgraded
// letting go of what the context's values hold, nothing of the HTTP exchange
// stays in memory for the socket's life but those values.
func Detach(ws transport.Websocket, opts DetachOptions) graphql.Transport {
	return detached{ws: ws, opts: opts}
}

// DetachOptions are Detach's hooks.
type DetachOptions struct {
	// OnPanic receives a panic of a socket's goroutine, which is no longer
	// under the HTTP chain's recover; the socket is closed.
	OnPanic func(ctx context.Context, p any)
	// Upgraded, if set, runs in the HTTP handler right after the upgrade,
	// with the socket's context: the place to let go of what the context's
	// values hold of the HTTP exchange (its ResponseWriter, its request),
	// which would otherwise stay in memory for the socket's life.
	Upgraded func(ctx context.Context)
}

type detached struct {
	ws   transport.Websocket
	opts DetachOptions
}

var _ graphql.Transport = detached{}

func (d detached) Supports(r *http.Request) bool { return d.ws.Supports(r) }

func (d detached) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx, cancel := detachContext(r.Context())
	upgrade := r.WithContext(ctx)
	upgrade.Body = http.NoBody
	impl := d.ws.Implementation
	if impl == nil {
		impl = transport.CoderWebsocketImplementation{}
	}
	conn, err := impl.Accept(w, upgrade, transport.WebsocketAcceptOptions{
		ResponseHeader: http.Header{},
		Subprotocols:   gqlgenSubprotocols,
	})
	if err != nil {
		cancel()
		transport.SendErrorf(w, http.StatusBadRequest, "unable to upgrade") // as gqlgen answers
		return
	}
	if d.opts.Upgraded != nil {
		d.opts.Upgraded(ctx)
	}
	ws := d.ws
	ws.Implementation = accepted{conn}
	go d.serve(ctx, cancel, ws, conn, socketRequest(ctx, r), exec)
}

// serve runs gqlgen's transport on the socket. r is an argument, not a
// variable captured by a closure that lives as long as the goroutine: once
// gqlgen has read it, it is garbage.
func (d detached) serve(ctx context.Context, cancel context.CancelFunc, ws transport.Websocket,
	conn transport.WebsocketConn, r *http.Request, exec graphql.GraphExecutor) {
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			_ = conn.Close()
			if d.opts.OnPanic != nil {
				d.opts.OnPanic(ctx, p)
			}
		}
	}()
	// gqlgen writes to w only when Accept fails, which accepted cannot.
	ws.Do(nil, r, exec)
}

// socketRequest is the copy of the upgrade request r that gqlgen gets: the
// request line and the peer, under ctx.
func socketRequest(ctx context.Context, r *http.Request) *http.Request {
	kept := http.Request{
		Method: r.Method, URL: r.URL, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Header: http.Header{}, Body: http.NoBody, Host: r.Host, RemoteAddr: r.RemoteAddr, RequestURI: r.RequestURI,
		TLS: r.TLS,
	}
	return kept.WithContext(ctx)
}

// detachContext keeps parent's values and takes its cancellation from the
// server context, without a goroutine.
func detachContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	srv, _ := parent.Value(serverContextKey{}).(context.Context)
	if srv == nil {
		return ctx, cancel
	}
	stop := context.AfterFunc(srv, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// accepted hands gqlgen the connection Detach already upgraded.
type accepted struct{ c transport.WebsocketConn }

func (a accepted) Accept(http.ResponseWriter, *http.Request, transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	return a.c, nil
}
