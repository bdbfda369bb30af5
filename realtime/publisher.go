package realtime

import (
	"context"
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/grading"
	"github.com/korrigo/korrigo/pubsub"
)

// publishTimeout bounds one publish (a Redis round trip): the grading services
// call the publisher on the request path after commit, and a stalled Redis must
// not stall them. A lost notification is repaired by the next change or resync.
const publishTimeout = 2 * time.Second

// Publisher sends committed changes to the broker. It implements
// grading.Publisher and is safe for concurrent use.
type Publisher struct {
	broker pubsub.Broker
	log    *zap.Logger
}

var _ grading.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher on broker.
func NewPublisher(broker pubsub.Broker, logger *zap.Logger) *Publisher {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Publisher{broker: broker, log: logger}
}

// CopyLockChanged publishes a lease change on the exam's lock topic.
func (p *Publisher) CopyLockChanged(ctx context.Context, ev grading.LockEvent) {
	m := lockMessage{ExamID: ev.ExamID, CopyID: ev.CopyID, Kind: CopyLockEventKind(ev.Kind),
		OwnerID: ev.OwnerID, OwnerName: ev.OwnerName, At: ev.At.UTC()}
	if !ev.ExpiresAt.IsZero() && (ev.Kind == grading.LockAcquired || ev.Kind == grading.LockRenewed) {
		t := ev.ExpiresAt.UTC()
		m.ExpiresAt = &t
	}
	p.publish(ctx, examLocksTopic(ev.ExamID), m)
}

// CopyStatusChanged publishes a status transition on the exam's status topic.
func (p *Publisher) CopyStatusChanged(ctx context.Context, ev grading.StatusEvent) {
	p.publish(ctx, examStatusTopic(ev.ExamID), statusMessage{ExamID: ev.ExamID, CopyID: ev.CopyID,
		From: ev.From, Status: ev.Status, Version: ev.CopyVersion, At: ev.At.UTC(),
		CorrectorID: ev.CorrectorID, PreviousCorrectorID: ev.PreviousCorrectorID, AssigneeID: ev.AssigneeID})
}

// JobChanged tells jobProgress subscribers that a job's row changed (state or
// progress): they re-read it. Call it after the change committed. It is the hook
// for the job runner; subscribers also poll, so a missed call only delays.
func (p *Publisher) JobChanged(ctx context.Context, jobID string) {
	p.publish(ctx, jobTopic(jobID), jobMessage{JobID: jobID})
}

func (p *Publisher) publish(ctx context.Context, topic string, msg any) {
	payload, err := json.Marshal(msg)
	if err != nil {
		p.log.Error("realtime: encode event", zap.String("topic", topic), zap.Error(err))
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := p.broker.Publish(ctx, topic, payload); err != nil {
		p.log.Warn("realtime: publish failed; subscribers see the change at their next event or resync",
			zap.String("topic", topic), zap.Error(err))
	}
}
