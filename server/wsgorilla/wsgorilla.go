// Package wsgorilla runs gqlgen's WebSocket transport over gorilla/websocket
// and closes the gaps between gqlgen v0.17.98 and graphql-ws PROTOCOL.md.
//
// Use it as transport.Websocket{Implementation: wsgorilla.New(opts), …}.
// The adapter reads every client message before gqlgen does and tracks what
// gqlgen writes back, so for graphql-transport-ws it closes with the codes the
// protocol defines where gqlgen would not:
//
//	subscribe before connection_ack      4401 Unauthorized
//	second connection_init               4429 Too many initialisation requests
//	subscribe with an id still running   4409 Subscriber for <id> already exists
//	not JSON, or not a valid message     4400 Invalid message received
//	no connection_init in InitTimeout    4408 Connection initialisation timeout
//	no acceptable subprotocol            4406 Subprotocol not acceptable
//
// It also answers ping before connection_init, drops complete before it, and
// drops what gqlgen still sends for an operation the client completed or that
// already ended with error (gqlgen follows an error with complete, and answers
// the client's complete with its own). 4403 stays gqlgen's: return
// transport.WithWebsocketCloseCode(ctx, 4403) from InitFunc.
//
// The legacy graphql-ws protocol (subscriptions-transport-ws) passes through
// unchanged, except the duplicate-id rule (4409), which keeps gqlgen from
// losing track of the first operation, and the init timeout (1002, as gqlgen).
//
// A client that offers no subprotocol, or none gqlgen supports, is upgraded
// and then closed with 4406, as graphql-ws's own server does: a browser only
// sees "1006" when an upgrade is refused, but it does see a close code.
package wsgorilla

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
)

type implementation struct {
	opts     Options
	upgrader websocket.Upgrader
}

// New returns a transport.WebsocketImplementation backed by gorilla/websocket.
func New(opts Options) transport.WebsocketImplementation {
	opts = opts.withDefaults()
	return &implementation{
		opts: opts,
		upgrader: websocket.Upgrader{
			HandshakeTimeout: opts.HandshakeTimeout,
			ReadBufferSize:   opts.ReadBufferSize,
			WriteBufferSize:  opts.WriteBufferSize,
			WriteBufferPool:  &sync.Pool{},
			CheckOrigin:      opts.CheckOrigin, // nil: gorilla's same-origin check
			// gqlgen answers a failed Accept with its own 400; writing a
			// response here as well would make that a second, broken one.
			Error: func(http.ResponseWriter, *http.Request, int, error) {},
		},
	}
}

func (im *implementation) Accept(
	w http.ResponseWriter,
	r *http.Request,
	options transport.WebsocketAcceptOptions,
) (transport.WebsocketConn, error) {
	up := im.upgrader
	up.Subprotocols = mergeSubprotocols(im.upgrader.Subprotocols, options.Subprotocols)
	hw := &hijackWriter{ResponseWriter: w}
	ws, err := up.Upgrade(hw, r, options.ResponseHeader)
	if err != nil {
		return nil, fmt.Errorf("wsgorilla: upgrade: %w", err)
	}
	hw.release()
	c := newConn(r.Context(), ws, &im.opts)
	registerCloser(r.Context(), c)
	return c, nil
}

// hijackWriter remembers the buffers net/http hands over with the connection.
// With a ReadBufferSize set and a WriteBufferPool, gorilla uses them only for
// the handshake, but net/http's connection keeps pointing at them (4 KiB
// each) for as long as the handler runs, which for a WebSocket is its whole
// life. After Hijack they belong to the caller, so release drops their memory.
type hijackWriter struct {
	http.ResponseWriter
	brw *bufio.ReadWriter
}

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.brw = brw
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (h *hijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

func (h *hijackWriter) release() {
	if h.brw == nil {
		return
	}
	// gorilla refused the upgrade if the client had sent data after the
	// request, so nothing is buffered here; the handshake is written.
	if h.brw.Reader != nil && h.brw.Reader.Buffered() == 0 {
		*h.brw.Reader = bufio.Reader{}
	}
	if h.brw.Writer != nil && h.brw.Writer.Buffered() == 0 {
		*h.brw.Writer = bufio.Writer{}
	}
}

// mergeSubprotocols adds gqlgen's subprotocols to the upgrader's, preferring
// graphql-transport-ws: gorilla picks the first server entry the client
// offers, and gqlgen lists the legacy protocol first.
func mergeSubprotocols(own, gqlgen []string) []string {
	merged := slices.Clone(own)
	for _, p := range preferredSubprotocols {
		if slices.Contains(gqlgen, p) && !slices.Contains(merged, p) {
			merged = append(merged, p)
		}
	}
	for _, p := range gqlgen {
		if !slices.Contains(merged, p) {
			merged = append(merged, p)
		}
	}
	return merged
}
