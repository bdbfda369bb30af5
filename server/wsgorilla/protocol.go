package wsgorilla

import (
	"bytes"
	"encoding/json"
)

// Close codes of graphql-ws PROTOCOL.md (github.com/enisdenjo/graphql-ws)
// that gqlgen v0.17.98 does not send itself; the adapter sends them.
const (
	CloseBadRequest               = 4400
	CloseUnauthorized             = 4401
	CloseForbidden                = 4403 // sent by gqlgen via transport.WithWebsocketCloseCode
	CloseSubprotocolNotAcceptable = 4406
	CloseInitTimeout              = 4408
	CloseSubscriberAlreadyExists  = 4409
	CloseTooManyInitRequests      = 4429

	closeGoingAway    = 1001
	closeProtocolErr  = 1002
	maxCloseReasonLen = 123 // RFC 6455: control payload 125 bytes minus the code
)

// dialect holds the message names of one GraphQL-over-WebSocket subprotocol.
type dialect struct {
	// strict enables the graphql-transport-ws rules (4400, 4401, 4429, ping
	// before init). The legacy protocol defines none of them, so it only gets
	// the duplicate-id rule, which protects gqlgen's bookkeeping.
	strict bool

	init, subscribe, stop    string // client → server
	ack, next, complete, err string // server → client

	initTimeoutCode   int
	initTimeoutReason string
}

var dialects = map[string]*dialect{
	"graphql-transport-ws": {
		strict: true,
		init:   "connection_init", subscribe: "subscribe", stop: "complete",
		ack: "connection_ack", next: "next", complete: "complete", err: "error",
		initTimeoutCode: CloseInitTimeout, initTimeoutReason: "Connection initialisation timeout",
	},
	// subscriptions-transport-ws, which gqlgen also calls "graphql-ws".
	"graphql-ws": {
		init: "connection_init", subscribe: "start", stop: "stop",
		ack: "connection_ack", next: "data", complete: "complete", err: "error",
		// Same code and words gqlgen uses for its own init timeout.
		initTimeoutCode: closeProtocolErr, initTimeoutReason: "connection initialisation timeout",
	},
}

// preferredSubprotocols orders negotiation when a client offers several:
// gorilla picks by server order and gqlgen lists the legacy protocol first.
var preferredSubprotocols = []string{"graphql-transport-ws", "graphql-ws"}

type action int

const (
	forward   action = iota // hand the message to gqlgen
	drop                    // swallow it
	replyPong               // answer a ping gqlgen cannot answer yet
	closeConn               // close with verdict.code
)

type verdict struct {
	action action
	code   int
	reason string
}

func closeWith(code int, reason string) verdict {
	return verdict{action: closeConn, code: code, reason: reason}
}

var badRequest = closeWith(CloseBadRequest, "Invalid message received")

// session tracks one connection's protocol state from the messages that pass
// through the adapter. It does no I/O; the conn serialises calls with its mutex.
type session struct {
	d            *dialect
	initReceived bool
	acked        bool
	// active holds ids of operations the client has open. stale holds ids the
	// client completed while gqlgen's goroutine for them is still winding down:
	// gqlgen answers a client complete with its own complete, which would end a
	// new operation reusing the id, so that one message is swallowed.
	active idSet
	stale  idSet
	// ponged records a pong since the adapter's last ping (Options.PingInterval).
	ponged bool
}

func newSession(d *dialect) *session {
	return &session{d: d}
}

// idSet is a set of operation ids. A socket mostly runs one operation at a
// time, for hours: the first id is held inline, and a map (about 200 B) is
// made only for a second one.
type idSet struct {
	first    string
	hasFirst bool
	more     map[string]struct{}
}

func (s *idSet) has(id string) bool {
	if s.hasFirst && s.first == id {
		return true
	}
	_, ok := s.more[id]
	return ok
}

// add adds id, which the caller checked is absent.
func (s *idSet) add(id string) {
	if !s.hasFirst {
		s.first, s.hasFirst = id, true
		return
	}
	if s.more == nil {
		s.more = map[string]struct{}{}
	}
	s.more[id] = struct{}{}
}

// remove removes id and reports whether it was there.
func (s *idSet) remove(id string) bool {
	if s.hasFirst && s.first == id {
		s.first, s.hasFirst = "", false
		return true
	}
	if _, ok := s.more[id]; ok {
		delete(s.more, id)
		return true
	}
	return false
}

type clientMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

// client decides what to do with one message from the client.
func (s *session) client(data []byte) verdict {
	var m clientMessage
	if err := json.Unmarshal(data, &m); err != nil {
		if s.d.strict {
			return badRequest
		}
		return verdict{action: forward} // gqlgen answers the legacy protocol itself
	}
	if s.d.strict {
		return s.strictClient(m)
	}
	return s.legacyClient(m)
}

func (s *session) strictClient(m clientMessage) verdict {
	switch m.Type {
	case s.d.init:
		// Shape first, as graphql-ws's server validates before it dispatches.
		if !isObjectOrNull(m.Payload) {
			return badRequest // gqlgen would return without closing the socket
		}
		if s.initReceived {
			return closeWith(CloseTooManyInitRequests, "Too many initialisation requests")
		}
		s.initReceived = true
		return verdict{action: forward}
	case "ping":
		if !isObjectOrNull(m.Payload) {
			return badRequest
		}
		if !s.initReceived {
			return verdict{action: replyPong} // gqlgen's init accepts nothing but init
		}
		return verdict{action: forward}
	case "pong":
		if !isObjectOrNull(m.Payload) {
			return badRequest
		}
		if !s.initReceived {
			return verdict{action: drop}
		}
		s.ponged = true
		return verdict{action: forward}
	case s.d.subscribe:
		if m.ID == "" || !validSubscribePayload(m.Payload) {
			return badRequest
		}
		if !s.acked {
			return closeWith(CloseUnauthorized, "Unauthorized")
		}
		return s.open(m.ID)
	case s.d.stop:
		if m.ID == "" {
			return badRequest
		}
		if !s.acked {
			return verdict{action: drop} // nothing can be running yet
		}
		s.clientComplete(m.ID)
		return verdict{action: forward}
	default:
		return badRequest
	}
}

func (s *session) legacyClient(m clientMessage) verdict {
	switch m.Type {
	case s.d.init:
		s.initReceived = true
	case s.d.subscribe:
		if m.ID != "" {
			return s.open(m.ID)
		}
	case s.d.stop:
		s.clientComplete(m.ID)
	}
	return verdict{action: forward}
}

func (s *session) open(id string) verdict {
	if s.active.has(id) {
		return closeWith(CloseSubscriberAlreadyExists, "Subscriber for "+id+" already exists")
	}
	s.active.add(id)
	return verdict{action: forward}
}

func (s *session) clientComplete(id string) {
	if s.active.remove(id) && !s.stale.has(id) {
		s.stale.add(id)
	}
}

// server reports whether a message gqlgen wrote should reach the client, and
// records acks and operation ends.
func (s *session) server(typ, id string) bool {
	m := struct{ Type, ID string }{typ, id}
	switch m.Type {
	case s.d.ack:
		s.acked = true
	case s.d.next:
		// After the client's complete no more events may be sent for the id.
		return s.active.has(m.ID)
	case s.d.complete, s.d.err:
		if s.stale.remove(m.ID) {
			return false
		}
		if !s.active.remove(m.ID) {
			return false // gqlgen sends complete after error; error already ended it
		}
	}
	return true
}

func isObjectOrNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || raw[0] == '{' || bytes.Equal(raw, []byte("null"))
}

// validSubscribePayload applies the shape check of graphql-ws's validateMessage.
func validSubscribePayload(raw json.RawMessage) bool {
	var p struct {
		Query         *string                    `json:"query"`
		OperationName *string                    `json:"operationName"`
		Variables     map[string]json.RawMessage `json:"variables"`
		Extensions    map[string]json.RawMessage `json:"extensions"`
	}
	return json.Unmarshal(raw, &p) == nil && p.Query != nil
}
