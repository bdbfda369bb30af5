package pubsub

import (
	"context"
	"sync"
	"sync/atomic"
)

// DefaultBufferSize is how many messages a subscriber may fall behind before it
// starts missing messages (and is told to resync).
const DefaultBufferSize = 64

// hubHooks let the Redis broker follow local interest in a topic: it keeps a
// single server connection and subscribes there only to topics somebody in this
// process listens to.
type hubHooks struct {
	// first runs when a topic gains its first local subscriber. Every
	// Subscribe on that topic waits for it, so the Redis broker can hold them
	// until the server has acknowledged the channel.
	first func(ctx context.Context, topic string) error
	// last runs when a topic loses its last local subscriber, including
	// after first failed. It may run concurrently with first for a new
	// subscriber of the same topic, so it must decide from current state
	// (hasSubscribers), not from the event.
	last func(topic string)
}

// hub fans messages out to the local subscribers of each topic. Sends never
// block: a subscriber that falls behind loses messages, not the publisher nor
// the other subscribers, and gets a Resync instead.
type hub struct {
	bufSize int
	hooks   hubHooks

	// mu guards topics, closed and Subscription.closed. It is write-locked
	// only to add or remove subscribers, so publishers to different topics
	// don't contend and nobody sends on a channel while it is being closed.
	mu     sync.RWMutex
	topics map[string]*topicSubs
	closed bool
}

type topicSubs struct {
	// sendMu serialises deliveries on the topic: every subscriber sees the
	// publishes in the same order, and each channel has a single sender at a
	// time, which the reserved Resync slot depends on.
	sendMu sync.Mutex
	subs   map[*Subscription]struct{} // guarded by hub.mu

	// Set by the subscriber that runs hooks.first, read by the others once
	// ready is closed.
	ready     chan struct{}
	err       error // what hooks.first returned
	abandoned bool  // hooks.first failed because its caller's ctx ended
}

func newHub(bufSize int, hooks hubHooks) *hub {
	if bufSize <= 0 {
		bufSize = DefaultBufferSize
	}
	return &hub{bufSize: bufSize, hooks: hooks, topics: make(map[string]*topicSubs)}
}

// Subscription is one subscriber's stream of messages on a topic.
type Subscription struct {
	topic string
	hub   *hub
	t     *topicSubs
	// ch has one slot more than the buffer: data may only fill bufSize
	// slots, so there is always room to queue a Resync right behind a drop.
	// Nil for a callback subscription (fn).
	ch chan Message
	// fn and ended are a SubscribeFunc subscriber's callbacks.
	fn    func(Message)
	ended func()

	closed    bool        // guarded by hub.mu
	stopWatch func() bool // unregisters the ctx watcher; guarded by hub.mu
	dropped   atomic.Uint64
}

// C returns the message stream. It is closed when the subscription ends.
func (s *Subscription) C() <-chan Message { return s.ch }

// Topic returns the topic subscribed to.
func (s *Subscription) Topic() string { return s.topic }

// Dropped returns how many messages this subscriber missed by falling behind.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes C. It is safe to call more than once
// and concurrently with deliveries. When it removes a topic's last local
// subscriber, the Redis broker sends UNSUBSCRIBE before it returns (bounded
// by a timeout).
func (s *Subscription) Close() { s.hub.remove(s) }

// deliver is called with the topic's sendMu held, which makes it the only
// sender on s.ch, so the length checks cannot be invalidated before the send
// (the reader can only make room).
func (s *Subscription) deliver(m Message) {
	if s.fn != nil {
		s.fn(m)
		return
	}
	if len(s.ch) < cap(s.ch)-1 {
		s.ch <- m
		return
	}
	s.dropped.Add(1)
	s.resync()
}

// resync queues a Resync unless the channel is full. Data never takes the last
// slot, so a full channel ends with a Resync the subscriber has not read yet;
// it will re-read the snapshot after everything already published, which
// covers this loss too.
func (s *Subscription) resync() {
	if s.fn != nil {
		s.fn(Message{Topic: s.topic, Resync: true})
		return
	}
	if len(s.ch) < cap(s.ch) {
		s.ch <- Message{Topic: s.topic, Resync: true}
	}
}

func (h *hub) subscribe(ctx context.Context, topic string) (*Subscription, error) {
	return h.subscribeFunc(ctx, topic, nil, nil)
}

// subscribeFunc subscribes with a channel (fn nil) or with callbacks.
func (h *hub) subscribeFunc(ctx context.Context, topic string, fn func(Message), ended func()) (*Subscription, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s, retry, err := h.trySubscribe(ctx, topic, fn, ended)
		if !retry {
			return s, err
		}
	}
}

// trySubscribe asks for a retry when the subscriber that ran the first hook
// gave up (its ctx ended): that failure says nothing about this caller.
func (h *hub) trySubscribe(ctx context.Context, topic string, fn func(Message), ended func()) (s *Subscription, retry bool, err error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, false, ErrClosed
	}
	t, joined := h.topics[topic]
	if !joined {
		t = &topicSubs{subs: make(map[*Subscription]struct{}), ready: make(chan struct{})}
		h.topics[topic] = t
	}
	s = &Subscription{topic: topic, hub: h, t: t, fn: fn}
	if fn == nil {
		s.ch = make(chan Message, h.bufSize+1)
	} else {
		// Called once the subscription is live; a failed subscribe ends
		// without it.
		s.ended = func() {}
	}
	// Registered before the hook runs, so hasSubscribers is already true for
	// it and nothing published after the hook returns can be missed.
	t.subs[s] = struct{}{}
	h.mu.Unlock()

	if !joined {
		h.runFirst(ctx, t, topic)
	} else {
		select {
		case <-t.ready:
		case <-ctx.Done():
			s.Close()
			return nil, false, ctx.Err()
		}
	}
	if t.err != nil {
		s.Close()
		return nil, joined && t.abandoned && ctx.Err() == nil, t.err
	}

	stop := context.AfterFunc(ctx, s.Close)
	h.mu.Lock()
	s.stopWatch = stop
	closed := s.closed
	if fn != nil && ended != nil && !closed {
		t.sendMu.Lock() // end reads ended under sendMu
		s.ended = ended
		t.sendMu.Unlock()
	}
	h.mu.Unlock()
	if closed { // the broker closed or ctx ended while the hook ran
		stop()
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		return nil, false, ErrClosed
	}
	return s, false, nil
}

func (h *hub) runFirst(ctx context.Context, t *topicSubs, topic string) {
	if h.hooks.first != nil {
		t.err = h.hooks.first(ctx, topic)
	}
	if t.err != nil {
		t.abandoned = ctx.Err() != nil
		// Detach the failed entry so that callers arriving from now on
		// start afresh instead of inheriting this failure.
		h.mu.Lock()
		if h.topics[topic] == t {
			delete(h.topics, topic)
		}
		h.mu.Unlock()
	}
	close(t.ready)
}

func (h *hub) remove(s *Subscription) {
	h.mu.Lock()
	if s.closed {
		h.mu.Unlock()
		return
	}
	s.closed = true
	if s.stopWatch != nil {
		s.stopWatch()
	}
	s.closeChan()
	delete(s.t.subs, s)
	last := len(s.t.subs) == 0
	if last && h.topics[s.topic] == s.t {
		delete(h.topics, s.topic)
	}
	h.mu.Unlock()
	s.end()

	if last && h.hooks.last != nil {
		h.hooks.last(s.topic)
	}
}

// publish delivers to every local subscriber of topic without waiting for any.
func (h *hub) publish(topic string, payload []byte) error {
	m := Message{Topic: topic, Payload: payload, decoded: &decodeOnce{}}
	return h.each(topic, func(s *Subscription) { s.deliver(m) })
}

// resync tells every local subscriber of topic that messages may have been lost.
func (h *hub) resync(topic string) error {
	return h.each(topic, (*Subscription).resync)
}

func (h *hub) each(topic string, f func(*Subscription)) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return ErrClosed
	}
	t := h.topics[topic]
	if t == nil {
		return nil
	}
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	for s := range t.subs {
		f(s)
	}
	return nil
}

func (h *hub) hasSubscribers(topic string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	t := h.topics[topic]
	return t != nil && len(t.subs) > 0
}

func (h *hub) isClosed() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.closed
}

// close ends every subscription. The hooks do not run: the broker is tearing
// down its connection anyway.
func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	var ended []*Subscription
	for _, t := range h.topics {
		for s := range t.subs {
			s.closed = true
			if s.stopWatch != nil {
				s.stopWatch()
			}
			s.closeChan()
			ended = append(ended, s)
		}
	}
	h.topics = nil
	h.mu.Unlock()
	for _, s := range ended {
		s.end()
	}
}

func (s *Subscription) closeChan() {
	if s.ch != nil {
		close(s.ch)
	}
}

// end runs a callback subscriber's ended, once, outside the hub's locks (the
// subscription is already removed, so no deliver follows). Deliveries run
// under the topic's sendMu; taking it here waits for one in flight.
func (s *Subscription) end() {
	if s.fn == nil {
		return
	}
	s.t.sendMu.Lock()
	ended := s.ended
	s.ended = nil
	s.t.sendMu.Unlock()
	if ended != nil {
		ended()
	}
}
