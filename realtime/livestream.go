package realtime

import (
	"context"
	"sync"

	"github.com/korrigo/korrigo/pubsub"
)

const (
	// liveBuffer is how many events a goroutine-free stream holds for a slow
	// WebSocket writer before it falls back to a resync (a fresh snapshot).
	// Lock changes come in bursts (a class's correctors opening their copies
	// at the start of a session): with 8, `make load` saw 366 of 500
	// subscribers resync under 30 teachers grading, though every event reached
	// them within 170 ms. 32 pointers cost 192 B more per subscription.
	liveBuffer = 32
	// liveQueue is how many notifications a stream keeps while it reads a
	// snapshot; more than that and it reads the snapshot again instead.
	liveQueue = 16
)

// liveStream is an exam stream (locks, statuses) that parks no goroutine of its
// own: the broker calls deliver from the publishing goroutine
// (pubsub.Broker.SubscribeFunc), which turns the notification into an event
// and hands it to the subscriber's channel without blocking. With thousands
// of subscribers on one exam, a goroutine and a broker buffer per
// subscription would be most of an idle connection's memory, and a hop per
// event.
//
// A goroutine runs only to read a snapshot: after a Resync, or when the
// subscriber's channel is full (the reader lags: the stream resyncs rather than
// block the publisher). While a snapshot is read, notifications are queued and
// filtered against it afterwards, as the goroutine-per-stream version does.
type liveStream[E, S any] struct {
	s      *Service
	ctx    context.Context
	examID string
	st     examStream[E, S]
	out    chan *E
	sub    *pubsub.Subscription

	mu        sync.Mutex
	state     S
	reading   bool             // a snapshot is being read and sent: queue
	again     bool             // the queue overflowed or a Resync came: read again
	queue     []pubsub.Message // while reading
	ended     bool             // no more events; out closed unless reading
	outClosed bool
}

// openLiveStream authorizes, subscribes before reading (nothing committed after
// the snapshot can be missed), reads and sends the snapshot, and streams the
// deltas.
func openLiveStream[E, S any](ctx context.Context, s *Service, examID string, st examStream[E, S]) (<-chan *E, error) {
	if err := s.authorizeExam(ctx, examID); err != nil {
		return nil, err
	}
	l := &liveStream[E, S]{s: s, ctx: ctx, examID: examID, st: st, out: make(chan *E, liveBuffer), reading: true}
	sub, err := s.broker.SubscribeFunc(ctx, st.topic, l.deliver, l.end)
	if err != nil {
		return nil, err
	}
	l.sub = sub
	snap, state, err := st.snapshot(ctx, examID)
	if err != nil {
		sub.Close()
		return nil, err
	}
	l.out <- snap // empty channel: never blocks
	if l.settle(state) {
		go l.resync()
	}
	return l.out, nil
}

// deliver is the broker's callback: it never blocks.
func (l *liveStream[E, S]) deliver(m pubsub.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.ended:
	case l.reading:
		l.enqueueLocked(m)
	case m.Resync:
		l.reading, l.again = true, true
		go l.resync()
	default:
		l.applyLocked(m)
	}
}

func (l *liveStream[E, S]) enqueueLocked(m pubsub.Message) {
	if m.Resync || len(l.queue) >= liveQueue {
		l.again, l.queue = true, nil
		return
	}
	if !l.again {
		l.queue = append(l.queue, m)
	}
}

// applyLocked sends the event of m, or starts a resync when the reader lags.
func (l *liveStream[E, S]) applyLocked(m pubsub.Message) {
	ev, stop := l.st.delta(l.ctx, l.examID, m, l.state)
	switch {
	case stop:
		l.endLocked()
		go l.sub.Close() // deliver runs under the broker's lock
	case ev == nil:
	default:
		select {
		case l.out <- ev:
		default:
			// The writer is behind by liveBuffer events: drop them all
			// for a fresh snapshot instead of blocking the publisher.
			l.reading, l.again = true, true
			go l.resync()
		}
	}
}

// settle installs the state of the snapshot just sent and replays what was
// queued meanwhile. It reports whether another snapshot is needed.
func (l *liveStream[E, S]) settle(state S) (again bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state = state
	if l.ended {
		l.reading = false
		l.closeOutLocked()
		return false
	}
	if l.again {
		l.again, l.queue = false, nil
		return true
	}
	queued := l.queue
	l.queue, l.reading = nil, false
	for _, m := range queued {
		if l.reading || l.ended {
			break // applyLocked started a resync or ended the stream
		}
		l.applyLocked(m)
	}
	return false
}

// resync re-authorizes and reads snapshots until one is sent with nothing
// lost after it. It is the only sender on out while reading is set.
func (l *liveStream[E, S]) resync() {
	for {
		// What was published until now is in the snapshot read next;
		// what comes from now on is queued and checked against it.
		l.mu.Lock()
		l.again, l.queue = false, nil
		l.mu.Unlock()
		var snap *E
		var state S
		err := l.s.authorizeExam(l.ctx, l.examID)
		if err == nil {
			snap, state, err = l.st.snapshot(l.ctx, l.examID)
		}
		if err != nil {
			l.s.endOnError(l.ctx, l.st.name, err)
			l.mu.Lock()
			l.ended, l.reading = true, false
			l.closeOutLocked()
			l.mu.Unlock()
			l.sub.Close()
			return
		}
		if !send(l.ctx, l.out, snap) {
			l.mu.Lock()
			l.reading = false
			l.closeOutLocked() // ctx ended: the subscription ends with it
			l.mu.Unlock()
			return
		}
		if !l.settle(state) {
			return
		}
	}
}

// end is the broker's ended callback (Close, ctx, broker closed).
func (l *liveStream[E, S]) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.endLocked()
}

// endLocked stops the stream; out is closed now unless a snapshot is being
// sent, in which case the reader closes it.
func (l *liveStream[E, S]) endLocked() {
	l.ended = true
	if !l.reading {
		l.closeOutLocked()
	}
}

func (l *liveStream[E, S]) closeOutLocked() {
	if !l.outClosed {
		l.outClosed = true
		close(l.out)
	}
}
