// Package pubsub carries realtime notifications (lock changes, status changes,
// job progress) from the code that commits a change to the WebSocket
// subscriptions that show it.
//
// Delivery is at-most-once. The database holds the truth; a message only says
// "something changed". Whenever a subscriber may have missed a message (it fell
// behind, or the Redis connection was re-established) it receives a Message
// with Resync set, and must re-read the snapshot instead of trusting the
// stream. Subscribers must not modify Payload: it is shared by every local
// subscriber of the topic.
package pubsub

import (
	"context"
	"errors"
	"sync"

	"go.uber.org/zap"
)

// ErrClosed is returned by a broker that has been closed.
var ErrClosed = errors.New("pubsub: broker closed")

// Message is one notification on a topic.
type Message struct {
	Topic string
	// Payload is the publisher's JSON, passed through untouched. Empty when Resync is set.
	Payload []byte
	// Resync means messages on Topic may have been lost before this one: the
	// subscriber must re-read the current state. Messages that follow it are
	// newer than the loss, so versions still order them against the snapshot.
	Resync bool

	// decoded is shared by every local delivery of one publish (see Decode).
	decoded *decodeOnce
}

type decodeOnce struct {
	once sync.Once
	v    any
	err  error
}

// Decode returns decode(m.Payload), computed once per published message and
// shared by every subscriber in this process that receives it: with thousands
// of subscribers on one topic, the payload is decoded once, not once each.
// Every subscriber of a topic must pass the same decode, and treat the value
// as read-only. A message built outside the broker is decoded on each call.
func (m Message) Decode(decode func([]byte) (any, error)) (any, error) {
	if m.decoded == nil {
		return decode(m.Payload)
	}
	d := m.decoded
	d.once.Do(func() { d.v, d.err = decode(m.Payload) })
	return d.v, d.err
}

// Broker publishes notifications and fans them out to subscribers, in this
// process only (Memory) or across every process sharing a Redis server (Redis).
type Broker interface {
	// Publish never waits for subscribers; with Redis it waits for the server.
	Publish(ctx context.Context, topic string, payload []byte) error
	// Subscribe returns once deliveries on topic are guaranteed, so a message
	// published after it returns is not missed. The subscription ends, and its
	// channel is closed, on Subscription.Close, when ctx is done, or when the
	// broker closes.
	Subscribe(ctx context.Context, topic string) (*Subscription, error)
	// SubscribeFunc is Subscribe for subscribers that keep no goroutine and no
	// buffer of their own: deliver is called with every message of topic
	// (Resync included), in order, from the goroutine that publishes it (the
	// publisher's, or the Redis reader's). It must return at once without
	// blocking and without calling the broker (hand the message on with a
	// non-blocking send, and resync when that fails). ended is called once,
	// after the last deliver, when the subscription ends (Close, ctx, or the
	// broker closing); the Subscription's C is nil.
	SubscribeFunc(ctx context.Context, topic string, deliver func(Message), ended func()) (*Subscription, error)
	// Close ends every subscription and releases the connection.
	Close() error
	// Ping reports whether the broker can deliver (used by /readyz).
	Ping(ctx context.Context) error
	// Name is "memory" or "redis", for logs and health output.
	Name() string
}

// Open returns the Redis broker when redisURL is set, the in-memory one
// otherwise. The in-memory broker cannot reach other processes, so it is only
// right for a single `serve` process.
func Open(ctx context.Context, redisURL string, logger *zap.Logger) (Broker, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if redisURL == "" {
		logger.Info("pubsub: in-memory broker active; events do not leave this process")
		return NewMemory(), nil
	}
	r, err := NewRedis(ctx, redisURL, logger)
	if err != nil {
		return nil, err
	}
	opt := r.client.Options()
	// The URL may carry a password: log where we connected, not the URL.
	logger.Info("pubsub: redis broker active",
		zap.String("addr", opt.Addr), zap.Int("db", opt.DB), zap.String("prefix", r.prefix))
	return r, nil
}
