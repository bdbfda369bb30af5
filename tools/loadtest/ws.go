package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

const qLockSub = `subscription($e: ID!) { copyLockChanged(examId: $e) { kind copyId at } }`

// LockEvent is one copyLockChanged event as a subscriber saw it.
type LockEvent struct {
	Kind   string
	CopyID string
	At     time.Time
}

// Subscriber is one WebSocket connection with one copyLockChanged subscription.
type Subscriber struct {
	conn *websocket.Conn
	mu   sync.Mutex
	// Events are the changes after the first SNAPSHOT; Resyncs counts later SNAPSHOTs.
	Events  []LockEvent
	Resyncs int
	Closed  error
	closing bool
}

// SubscriberPool holds every subscriber of a scenario and their event latencies.
type SubscriberPool struct {
	Subs     []*Subscriber
	Latency  *Recorder
	received atomic.Int64
	wg       sync.WaitGroup
}

// connectSubscribers opens n sockets (tokens used round-robin), subscribes each
// to copyLockChanged(exam) and waits for every SNAPSHOT.
func connectSubscribers(ctx context.Context, wsURL string, tokens []string, exam string, n int) (*SubscriberPool, *Recorder, error) {
	p := &SubscriberPool{Subs: make([]*Subscriber, n), Latency: NewRecorder("ws: publish→receive latency")}
	connect := NewRecorder("ws: connect+subscribe+snapshot")
	err := parallel(n, 64, func(i int) error {
		t := time.Now()
		s, err := subscribe(ctx, wsURL, tokens[i%len(tokens)], exam)
		connect.Add(time.Since(t), wsCode(err))
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		p.Subs[i] = s
		// Read at once: a socket left unread misses the server's pings and is closed.
		p.wg.Add(1)
		go p.receive(s)
		return nil
	})
	connect.Stop()
	if err != nil {
		p.Close()
		return nil, connect, err
	}
	return p, connect, nil
}

func wsCode(err error) string {
	if err == nil {
		return ""
	}
	if ce, ok := err.(*websocket.CloseError); ok {
		return fmt.Sprintf("WS_CLOSE_%d", ce.Code)
	}
	if strings.HasPrefix(err.Error(), "error message") {
		return "WS_ERROR"
	}
	return "TRANSPORT"
}

type wsMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

type lockPayload struct {
	Data *struct {
		CopyLockChanged LockEvent `json:"copyLockChanged"`
	} `json:"data"`
	Errors []gqlError `json:"errors"`
}

func subscribe(ctx context.Context, wsURL, token, exam string) (*Subscriber, error) {
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: time.Minute}
	c, _, err := d.DialContext(ctx, wsURL, nil)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Subscriber, error) {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Now().Add(time.Minute))
	if err := c.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"authorization": "Bearer " + token}}); err != nil {
		return fail(err)
	}
	if err := c.WriteJSON(map[string]any{"type": "subscribe", "id": "1", "payload": map[string]any{
		"query": qLockSub, "variables": map[string]any{"e": exam}}}); err != nil {
		return fail(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	for {
		var m wsMessage
		if err := c.ReadJSON(&m); err != nil {
			return fail(err)
		}
		switch m.Type {
		case "ping":
			_ = c.WriteJSON(map[string]any{"type": "pong"})
		case "error":
			return fail(fmt.Errorf("error message: %s", m.Payload))
		case "next":
			var p lockPayload
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				return fail(err)
			}
			if len(p.Errors) > 0 {
				return fail(fmt.Errorf("error message: %s", p.Errors[0].Message))
			}
			if p.Data != nil && p.Data.CopyLockChanged.Kind == "SNAPSHOT" {
				_ = c.SetReadDeadline(time.Time{})
				_ = c.SetWriteDeadline(time.Time{})
				return &Subscriber{conn: c}, nil
			}
		}
	}
}

func (p *SubscriberPool) receive(s *Subscriber) {
	defer p.wg.Done()
	for {
		var m wsMessage
		if err := s.conn.ReadJSON(&m); err != nil {
			s.mu.Lock()
			if !s.closing {
				s.Closed = err
			}
			s.mu.Unlock()
			return
		}
		now := time.Now()
		switch m.Type {
		case "ping":
			s.mu.Lock()
			_ = s.conn.WriteJSON(map[string]any{"type": "pong"})
			s.mu.Unlock()
		case "next":
			var pl lockPayload
			if json.Unmarshal(m.Payload, &pl) != nil || pl.Data == nil {
				continue
			}
			ev := pl.Data.CopyLockChanged
			s.mu.Lock()
			if ev.Kind == "SNAPSHOT" {
				s.Resyncs++
			} else {
				s.Events = append(s.Events, ev)
			}
			s.mu.Unlock()
			if ev.Kind != "SNAPSHOT" {
				p.Latency.Add(now.Sub(ev.At), "")
				p.received.Add(1)
			}
		}
	}
}

// Received is how many change events all subscribers got so far.
func (p *SubscriberPool) Received() int64 { return p.received.Load() }

// Settle waits until no event arrived for quiet (or max elapsed).
func (p *SubscriberPool) Settle(quiet, maxWait time.Duration) {
	deadline := time.Now().Add(maxWait)
	last, lastChange := p.Received(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if n := p.Received(); n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) >= quiet {
			return
		}
	}
}

// Close ends every connection.
func (p *SubscriberPool) Close() {
	for _, s := range p.Subs {
		if s != nil {
			s.mu.Lock()
			s.closing = true
			s.mu.Unlock()
			_ = s.conn.Close() // no close handshake: 5,000 of them take too long on a busy machine
		}
	}
	p.wg.Wait()
}

// Snapshot copies each subscriber's events (for the invariant checker).
func (p *SubscriberPool) Snapshot() [][]LockEvent {
	out := make([][]LockEvent, len(p.Subs))
	for i, s := range p.Subs {
		if s == nil {
			continue
		}
		s.mu.Lock()
		out[i] = append([]LockEvent(nil), s.Events...)
		s.mu.Unlock()
	}
	return out
}

// CloseReasons counts the subscribers whose socket ended, by reason.
func (p *SubscriberPool) CloseReasons() map[string]int {
	out := map[string]int{}
	for _, s := range p.Subs {
		if s == nil {
			continue
		}
		s.mu.Lock()
		if s.Closed != nil {
			out[truncate(s.Closed.Error(), 80)]++
		}
		s.mu.Unlock()
	}
	return out
}

// Resynced says, per subscriber, whether it got a SNAPSHOT after the first.
func (p *SubscriberPool) Resynced() []bool {
	out := make([]bool, len(p.Subs))
	for i, s := range p.Subs {
		if s == nil {
			continue
		}
		s.mu.Lock()
		out[i] = s.Resyncs > 0
		s.mu.Unlock()
	}
	return out
}

// ResyncCount is the number of subscribers that got a SNAPSHOT after the first.
func (p *SubscriberPool) ResyncCount() int {
	n := 0
	for _, s := range p.Subs {
		if s == nil {
			continue
		}
		s.mu.Lock()
		if s.Resyncs > 0 {
			n++
		}
		s.mu.Unlock()
	}
	return n
}
