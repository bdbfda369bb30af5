package wsgorilla

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
)

// ProtocolError is what NextReader returns after the adapter closed the socket
// because the client broke the subprotocol. Once the connection runs, gqlgen
// hands it to ErrorFunc wrapped in transport.WebsocketError.
type ProtocolError struct {
	Code   int
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("websocket protocol violation: closed with %d %q", e.Code, e.Reason)
}

var (
	_ transport.WebsocketConn          = (*conn)(nil)
	_ transport.WebsocketReadLimiter   = (*conn)(nil)
	_ transport.WebsocketReadDeadliner = (*conn)(nil)
)

type conn struct {
	ws *websocket.Conn
	// ctx is the upgrade request's context: the socket's, for the hooks.
	ctx  context.Context
	opts *Options

	// gqlgen serialises its own writes, but the adapter also writes (pong
	// before init) and gorilla allows only one writer at a time.
	writeMu sync.Mutex
	// deadlineAt is when the write deadline was last set (under writeMu).
	deadlineAt time.Time

	mu          sync.Mutex // guards everything below; never held during I/O
	sess        *session   // nil: subprotocol without rules, pass through
	subprotocol string
	closeSent   bool  // a close frame went out (by us, gqlgen or gorilla)
	peerClosed  bool  // the client's close frame came in
	closed      bool  // Close ran
	localErr    error // what NextReader reports after the adapter closed
	initTimer   *time.Timer
	pingTimer   *time.Timer // Options.PingInterval, from connection_ack on
	linger      *time.Timer
	// stopWatch ends the watch of ctx that closes the socket on shutdown
	// before connection_ack; nil once acked (gqlgen's closeOnCancel then
	// owns that), so a running socket does not keep the watch in memory.
	stopWatch func() bool
}

func newConn(ctx context.Context, ws *websocket.Conn, opts *Options) *conn {
	c := &conn{ws: ws, ctx: ctx, opts: opts, subprotocol: ws.Subprotocol()}
	ws.SetReadLimit(opts.ReadLimit)
	if c.subprotocol == "" {
		// gqlgen would fall back to graphql-ws; graphql-ws's reference server
		// closes with 4406 instead, which clients report as fatal. gqlgen then
		// sees an empty subprotocol and a failing NextReader, and tears down.
		c.closeLocally(CloseSubprotocolNotAcceptable, "Subprotocol not acceptable", true)
		return c
	}
	if d, ok := dialects[c.subprotocol]; ok {
		c.sess = newSession(d)
	}

	if c.sess == nil {
		return c // gqlgen runs it from the start: its closeOnCancel ends it
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if opts.InitTimeout > 0 {
		c.initTimer = time.AfterFunc(opts.InitTimeout, c.initExpired)
	}
	// gqlgen notices a cancelled request context only once the connection
	// runs; before connection_ack the adapter must end it on shutdown.
	c.stopWatch = context.AfterFunc(c.ctx, c.contextDone)
	return c
}

func (c *conn) Subprotocol() string { return c.subprotocol }

// SetReadLimit receives gqlgen's PayloadReadLimit; the stricter limit wins.
func (c *conn) SetReadLimit(limit int64) {
	c.ws.SetReadLimit(min(limit, c.opts.ReadLimit))
}

// SetReadDeadline lets gqlgen's PingPongInterval drop clients that stop
// answering pings.
func (c *conn) SetReadDeadline(t time.Time) error {
	return c.ws.SetReadDeadline(t)
}

func (c *conn) NextReader() (int, io.Reader, error) {
	for {
		if err := c.failed(); err != nil {
			return 0, nil, err
		}
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			return mt, nil, c.readError(err)
		}

		c.mu.Lock()
		v := verdict{action: forward}
		if c.sess != nil {
			v = c.sess.client(data)
			if c.sess.initReceived && c.initTimer != nil {
				c.initTimer.Stop()
				c.initTimer = nil
			}
			if c.sess.ponged && c.pingTimer != nil {
				// As gqlgen does on a pong: the peer is alive, no deadline
				// until the next ping.
				_ = c.ws.SetReadDeadline(time.Time{})
			}
		}
		c.mu.Unlock()

		switch v.action {
		case forward:
			if err := c.failed(); err != nil { // the init timer won the race
				return 0, nil, err
			}
			return mt, bytes.NewReader(data), nil
		case drop:
		case replyPong:
			if err := c.writeText([]byte(`{"type":"pong"}`)); err != nil {
				return 0, nil, err
			}
		case closeConn:
			c.closeLocally(v.code, v.reason, true)
			if err := c.failed(); err != nil {
				return 0, nil, err
			}
			// gqlgen's own close frame went out first; report ours anyway.
			return 0, nil, &ProtocolError{Code: v.code, Reason: v.reason}
		}
	}
}

func (c *conn) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.localErr
}

// readError maps gorilla's read errors to what gqlgen expects and completes
// the close handshake.
func (c *conn) readError(err error) error {
	var ce *websocket.CloseError
	isClose := errors.As(err, &ce)

	c.mu.Lock()
	localErr := c.localErr
	weClosedFirst := c.closeSent
	closeNow := false
	if isClose {
		// gorilla has echoed the close frame unless we had sent one already.
		c.peerClosed, c.closeSent = true, true
		closeNow = c.closed
		if c.linger != nil {
			c.linger.Stop()
		}
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		c.closeSent = true // gorilla has sent 1009
	}
	c.mu.Unlock()

	if closeNow {
		_ = c.ws.Close()
	}
	switch {
	case localErr != nil:
		return localErr
	case isClose && (weClosedFirst || isNormalClose(ce.Code)):
		return transport.ErrWebsocketClosed
	default:
		return err
	}
}

// isNormalClose lists the codes of a client that simply leaves; 1001 is what
// browsers send when a tab closes.
func isNormalClose(code int) bool {
	switch code {
	case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived:
		return true
	}
	return false
}

func (c *conn) WriteJSON(v any) error {
	env, ok := readEnvelope(v)
	var data []byte
	if ok {
		buf := encodeBuffers.Get().(*[]byte)
		data = env.appendTo((*buf)[:0])
		defer func() {
			// gorilla has copied or written data when writeText returns.
			if cap(data) <= maxPooledBuffer {
				*buf = data
				encodeBuffers.Put(buf)
			}
		}()
	} else {
		var err error
		if data, err = json.Marshal(v); err != nil {
			return fmt.Errorf("wsgorilla: encode message: %w", err)
		}
		var m struct{ Type, ID string }
		if json.Unmarshal(data, &m) == nil {
			env.typ, env.id = m.Type, m.ID
		}
	}
	c.mu.Lock()
	// RFC 6455 allows no data after a close frame; gqlgen's subscription
	// goroutines still try to send their complete while it tears down.
	send := !c.closeSent && !c.closed
	if send && c.sess != nil {
		send = c.sess.server(env.typ, env.id)
		if c.sess.acked {
			c.runningLocked()
		}
	}
	c.mu.Unlock()
	if !send {
		return nil
	}
	return c.writeText(data)
}

func (c *conn) writeText(data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	// Setting a deadline re-arms a runtime timer, and an event fanned out
	// writes to thousands of sockets: it is moved at most every tenth of
	// WriteTimeout, so each write still gets at least 9/10 of it.
	if now := time.Now(); now.Sub(c.deadlineAt) >= c.opts.WriteTimeout/10 {
		_ = c.ws.SetWriteDeadline(now.Add(c.opts.WriteTimeout))
		c.deadlineAt = now
	}
	err := c.ws.WriteMessage(websocket.TextMessage, data)
	if err == nil || errors.Is(err, websocket.ErrCloseSent) {
		return nil
	}
	// gorilla's writer is now broken for good: end the read side too, so
	// gqlgen tears the connection down instead of waiting for the client.
	c.abort()
	return fmt.Errorf("wsgorilla: write: %w", err)
}

// WriteClose sends a close frame; gqlgen calls Close right after. Only the
// first close frame counts, so a code the adapter already sent stands.
func (c *conn) WriteClose(code int, message string) error {
	c.mu.Lock()
	if c.closeSent {
		c.mu.Unlock()
		return nil
	}
	c.closeSent = true
	c.mu.Unlock()
	return c.sendClose(code, message)
}

func (c *conn) sendClose(code int, message string) error {
	msg := websocket.FormatCloseMessage(code, truncateReason(message))
	err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.opts.WriteTimeout))
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		return fmt.Errorf("wsgorilla: write close %d: %w", code, err)
	}
	return nil
}

// closeLocally closes on the adapter's own initiative (protocol violation,
// init timeout, shutdown) and makes NextReader report why.
func (c *conn) closeLocally(code int, reason string, violation bool) {
	c.mu.Lock()
	if c.localErr != nil || c.closeSent {
		c.mu.Unlock()
		return
	}
	if violation {
		c.localErr = &ProtocolError{Code: code, Reason: reason}
	} else {
		c.localErr = transport.ErrWebsocketClosed
	}
	c.closeSent = true
	c.mu.Unlock()

	_ = c.sendClose(code, reason)
	if violation && c.opts.OnProtocolClose != nil {
		c.opts.OnProtocolClose(c.ctx, code, reason)
	}
	// gqlgen may be blocked in NextReader; Close lets it return once the
	// client answers or the grace period ends.
	_ = c.Close()
}

func (c *conn) initExpired() {
	c.mu.Lock()
	expired := c.sess != nil && !c.sess.initReceived
	c.mu.Unlock()
	if expired {
		c.closeLocally(c.sess.d.initTimeoutCode, c.sess.d.initTimeoutReason, true)
	}
}

func (c *conn) contextDone() {
	c.mu.Lock()
	running := c.sess.acked
	c.mu.Unlock()
	if !running { // once acked, gqlgen's closeOnCancel owns this
		c.closeLocally(closeGoingAway, "server shutting down", false)
	}
}

// runningLocked hands the socket over from the adapter's start-up watch to
// the keep-alive once gqlgen has acked connection_init.
func (c *conn) runningLocked() {
	if c.stopWatch != nil {
		c.stopWatch()
		c.stopWatch = nil
	}
	if c.pingTimer == nil && c.opts.PingInterval > 0 {
		c.startPingsLocked()
	}
}

// Close releases the connection. After a close frame the write side is shut
// first and the socket lingers up to CloseGrace for the client's answer: an
// immediate close with unread input makes the kernel send a reset, and the
// client may then lose the close frame carrying the reason.
func (c *conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.stopTimersLocked()
	linger := c.closeSent && !c.peerClosed && c.opts.CloseGrace > 0
	if linger {
		c.linger = time.AfterFunc(c.opts.CloseGrace, func() { _ = c.ws.Close() })
	}
	c.mu.Unlock()

	if !linger {
		return c.ws.Close()
	}
	if cw, ok := c.ws.NetConn().(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	return nil
}

// abort drops the connection without a close handshake.
func (c *conn) abort() {
	c.mu.Lock()
	c.closed = true
	c.stopTimersLocked()
	if c.linger != nil {
		c.linger.Stop()
	}
	c.mu.Unlock()
	_ = c.ws.Close()
}

// startPingsLocked starts the adapter's keep-alive after connection_ack. It
// replaces gqlgen's PingPongInterval and KeepAlivePingInterval, which each park
// a goroutine per connection; a timer costs none while it waits. As with
// gqlgen, a graphql-transport-ws peer that answers no ping for two intervals
// is dropped (its read fails on the deadline), and the legacy protocol gets
// "ka" messages, which need no answer.
func (c *conn) startPingsLocked() {
	if c.sess.d.strict {
		_ = c.ws.SetReadDeadline(time.Now().Add(2 * c.opts.PingInterval))
	}
	c.pingTimer = time.AfterFunc(c.opts.PingInterval, c.pingTick)
}

func (c *conn) pingTick() {
	c.mu.Lock()
	if c.closed || c.closeSent {
		c.mu.Unlock()
		return
	}
	msg := []byte(`{"type":"ka"}`)
	if c.sess.d.strict {
		msg = []byte(`{"type":"ping"}`)
		if c.sess.ponged {
			_ = c.ws.SetReadDeadline(time.Now().Add(2 * c.opts.PingInterval))
		}
		c.sess.ponged = false
	}
	c.pingTimer.Reset(c.opts.PingInterval)
	c.mu.Unlock()
	_ = c.writeText(msg) // a failed write aborts the connection
}

func (c *conn) stopTimersLocked() {
	if c.initTimer != nil {
		c.initTimer.Stop()
	}
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	if c.stopWatch != nil {
		c.stopWatch()
	}
}

// truncateReason keeps a close reason within the control frame limit without
// splitting a UTF-8 sequence (ids echoed in 4409 come from the client).
func truncateReason(s string) string {
	if len(s) <= maxCloseReasonLen {
		return s
	}
	cut := maxCloseReasonLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
