package pubsub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// DefaultPrefix namespaces Korrigo's channels on a shared Redis server.
const DefaultPrefix = "korrigo:"

const (
	// subscribeTimeout bounds the wait for the server's acknowledgement when
	// the caller's ctx has no deadline, so a dead server fails a
	// subscription instead of hanging a WebSocket handshake.
	subscribeTimeout = 10 * time.Second
	// unsubscribeTimeout bounds the UNSUBSCRIBE sent from Subscription.Close.
	unsubscribeTimeout = 5 * time.Second
)

// Redis is the multi-process broker. Each process holds one pub/sub
// connection, subscribed to the topics it has local subscribers for, and one
// goroutine that reads it into the local hub; publishing goes through the
// ordinary client pool.
type Redis struct {
	client *redis.Client
	ps     *redis.PubSub
	hub    *hub
	prefix string
	log    *zap.Logger

	closing   chan struct{} // closed when Close starts; unblocks waiting subscribers
	readDone  chan struct{} // closed when the reader goroutine returns
	closeOnce sync.Once

	// subMu serialises SUBSCRIBE/UNSUBSCRIBE and guards subscribed, the
	// channels the server has acknowledged and not been told to drop.
	subMu      sync.Mutex
	subscribed map[string]bool

	// ackMu guards acks: channels whose SUBSCRIBE is in flight, by channel.
	// The reader goroutine takes only this lock, never subMu, which is held
	// while waiting for it.
	ackMu sync.Mutex
	acks  map[string]chan struct{}
}

var _ Broker = (*Redis)(nil)

// RedisOption configures NewRedis.
type RedisOption func(*Redis)

// WithPrefix replaces DefaultPrefix, e.g. to isolate tests sharing a server.
func WithPrefix(prefix string) RedisOption {
	return func(r *Redis) { r.prefix = prefix }
}

// NewRedis connects to the server at url (redis://[user:pass@]host:port/db,
// options as in redis.ParseURL) and starts the reader goroutine. It fails if
// the server does not answer a PING, so a misconfigured URL stops startup.
func NewRedis(ctx context.Context, url string, logger *zap.Logger, opts ...RedisOption) (*Redis, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("pubsub: invalid redis URL")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	client := redis.NewClient(opt)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("pubsub: ping redis at %s: %w", opt.Addr, err)
	}

	r := &Redis{
		client:     client,
		prefix:     DefaultPrefix,
		log:        logger,
		closing:    make(chan struct{}),
		readDone:   make(chan struct{}),
		subscribed: make(map[string]bool),
		acks:       make(map[string]chan struct{}),
	}
	for _, o := range opts {
		o(r)
	}
	r.hub = newHub(DefaultBufferSize, hubHooks{first: r.ensureSubscribed, last: r.dropIfUnused})
	// No channels yet: the connection follows local interest (see the hooks).
	r.ps = client.Subscribe(ctx)
	go r.read(r.ps.ChannelWithSubscriptions())
	return r, nil
}

// Publish sends payload to every process subscribed to topic.
func (r *Redis) Publish(ctx context.Context, topic string, payload []byte) error {
	if r.hub.isClosed() {
		return ErrClosed
	}
	if err := r.client.Publish(ctx, r.prefix+topic, payload).Err(); err != nil {
		return fmt.Errorf("pubsub: publish on %q: %w", topic, err)
	}
	return nil
}

// Subscribe returns once the server has acknowledged the channel.
func (r *Redis) Subscribe(ctx context.Context, topic string) (*Subscription, error) {
	return r.hub.subscribe(ctx, topic)
}

// SubscribeFunc is Subscribe with a callback (see Broker).
func (r *Redis) SubscribeFunc(ctx context.Context, topic string, deliver func(Message), ended func()) (*Subscription, error) {
	return r.hub.subscribeFunc(ctx, topic, deliver, ended)
}

// Ping checks that the server answers.
func (r *Redis) Ping(ctx context.Context) error {
	if r.hub.isClosed() {
		return ErrClosed
	}
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("pubsub: ping redis: %w", err)
	}
	return nil
}

func (r *Redis) isClosing() bool {
	select {
	case <-r.closing:
		return true
	default:
		return false
	}
}

// Name returns "redis".
func (r *Redis) Name() string { return "redis" }

// Close ends every subscription, stops the reader and closes the connections.
func (r *Redis) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.closing)
		// Hub first: new subscribers fail fast with ErrClosed instead of
		// racing the connection teardown.
		r.hub.close()
		// Closing the PubSub closes the channel the reader ranges over.
		if e := r.ps.Close(); e != nil {
			err = fmt.Errorf("pubsub: close redis subscription: %w", e)
		}
		<-r.readDone
		if e := r.client.Close(); e != nil && err == nil {
			err = fmt.Errorf("pubsub: close redis client: %w", e)
		}
	})
	return err
}

// read is the only consumer of the pub/sub connection.
func (r *Redis) read(ch <-chan any) {
	defer close(r.readDone)
	for v := range ch {
		switch m := v.(type) {
		case *redis.Message:
			if topic, ok := strings.CutPrefix(m.Channel, r.prefix); ok {
				_ = r.hub.publish(topic, []byte(m.Payload))
			}
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				r.subscribeConfirmed(m.Channel)
			}
		}
	}
}

// subscribeConfirmed handles the server's "subscribe" reply: either the
// acknowledgement a Subscribe is waiting for, or go-redis resubscribing after
// it reconnected, in which case anything published meanwhile is lost.
func (r *Redis) subscribeConfirmed(channel string) {
	r.ackMu.Lock()
	ack, waited := r.acks[channel]
	delete(r.acks, channel)
	r.ackMu.Unlock()
	if waited {
		close(ack)
		return
	}
	topic, ok := strings.CutPrefix(channel, r.prefix)
	if !ok {
		return
	}
	r.log.Warn("pubsub: redis resubscribed after a reconnect; subscribers will resync",
		zap.String("channel", channel))
	_ = r.hub.resync(topic)
}

// ensureSubscribed is the hub's first hook: it returns once the server
// delivers topic's channel to this process.
func (r *Redis) ensureSubscribed(ctx context.Context, topic string) error {
	channel := r.prefix + topic
	r.subMu.Lock()
	defer r.subMu.Unlock()
	// Still subscribed when the previous subscribers' UNSUBSCRIBE has not
	// been sent yet; dropIfUnused will then see this subscriber and keep it.
	if r.isClosing() {
		return ErrClosed
	}
	if r.subscribed[channel] || !r.hub.hasSubscribers(topic) {
		return nil
	}

	ack := make(chan struct{})
	r.ackMu.Lock()
	r.acks[channel] = ack
	r.ackMu.Unlock()

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, subscribeTimeout)
		defer cancel()
	}
	err := r.ps.Subscribe(ctx, channel)
	if err == nil {
		select {
		case <-ack:
			r.subscribed[channel] = true
			return nil
		case <-ctx.Done():
			err = ctx.Err()
		case <-r.closing:
			err = ErrClosed
		}
	}

	r.ackMu.Lock()
	delete(r.acks, channel)
	r.ackMu.Unlock()
	// go-redis remembers the channel even when the write failed and would
	// subscribe to it on its next reconnect; nobody is listening for it.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unsubscribeTimeout)
	defer cancel()
	_ = r.ps.Unsubscribe(uctx, channel)
	if errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("pubsub: subscribe to %q: %w", channel, err)
}

// dropIfUnused is the hub's last hook. A new subscriber may have arrived since
// the hook was triggered, hence the check under subMu.
func (r *Redis) dropIfUnused(topic string) {
	channel := r.prefix + topic
	r.subMu.Lock()
	defer r.subMu.Unlock()
	if !r.subscribed[channel] || r.hub.hasSubscribers(topic) {
		return
	}
	delete(r.subscribed, channel)
	ctx, cancel := context.WithTimeout(context.Background(), unsubscribeTimeout)
	defer cancel()
	if err := r.ps.Unsubscribe(ctx, channel); err != nil && !r.isClosing() {
		// Harmless: the hub discards messages for topics nobody listens to.
		r.log.Warn("pubsub: redis unsubscribe failed", zap.String("channel", channel), zap.Error(err))
	}
}
