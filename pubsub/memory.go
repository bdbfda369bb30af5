package pubsub

import (
	"bytes"
	"context"
)

// Memory is the single-process broker: publishing is a local fan-out.
type Memory struct {
	hub *hub
}

var _ Broker = (*Memory)(nil)

// NewMemory returns an in-process broker.
func NewMemory() *Memory {
	return &Memory{hub: newHub(DefaultBufferSize, hubHooks{})}
}

// Publish delivers payload to the current subscribers of topic.
func (m *Memory) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Subscribers read the payload after Publish returns; copying keeps a
	// caller that reuses its buffer from rewriting messages in flight, as
	// with Redis.
	return m.hub.publish(topic, bytes.Clone(payload))
}

// Subscribe starts a subscription on topic.
func (m *Memory) Subscribe(ctx context.Context, topic string) (*Subscription, error) {
	return m.hub.subscribe(ctx, topic)
}

// SubscribeFunc starts a callback subscription on topic (see Broker).
func (m *Memory) SubscribeFunc(ctx context.Context, topic string, deliver func(Message), ended func()) (*Subscription, error) {
	return m.hub.subscribeFunc(ctx, topic, deliver, ended)
}

// Close ends every subscription.
func (m *Memory) Close() error {
	m.hub.close()
	return nil
}

// Ping fails only after Close.
func (m *Memory) Ping(ctx context.Context) error {
	if m.hub.isClosed() {
		return ErrClosed
	}
	return ctx.Err()
}

// Name returns "memory".
func (m *Memory) Name() string { return "memory" }
