package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/copylock"
	"github.com/korrigo/korrigo/ent/exam"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/gradingevent"
	"github.com/korrigo/korrigo/ent/job"
	"github.com/korrigo/korrigo/grading"
	"github.com/korrigo/korrigo/pubsub"
)

const (
	// DefaultJobPoll is how often jobProgress re-reads its job when no
	// notification came: the job runner's hook (Publisher.JobChanged) makes
	// updates immediate, the poll makes them certain.
	DefaultJobPoll = 2 * time.Second

	// endWindow bounds how far back a lock snapshot looks for the end of a
	// lease (RELEASED, EXPIRED, BROKEN, finalization) to stamp free copies:
	// a notification older than that is no longer in flight.
	endWindow = 15 * time.Minute
)

// leaseEnds are the GradingEvent actions that end a lease, with the same time
// as the LockEvent published for them.
var leaseEnds = []string{grading.ActionLockReleased, grading.ActionLockExpired, grading.ActionLockBroken,
	grading.ActionFinalize}

// Service turns broker topics into GraphQL subscriptions. Reads go through the
// ent privacy rules with the subscriber's viewer, so a subscription shows what
// the same viewer's queries would.
type Service struct {
	client  *ent.Client
	broker  pubsub.Broker
	log     *zap.Logger
	now     func() time.Time
	jobPoll time.Duration
}

// Option configures a Service.
type Option func(*Service)

// WithJobPoll replaces DefaultJobPoll (tests).
func WithJobPoll(d time.Duration) Option { return func(s *Service) { s.jobPoll = d } }

// NewService returns a Service reading with client and listening on broker.
func NewService(client *ent.Client, broker pubsub.Broker, logger *zap.Logger, opts ...Option) *Service {
	if logger == nil {
		logger = zap.NewNop()
	}
	s := &Service{client: client, broker: broker, log: logger, now: time.Now, jobPoll: DefaultJobPoll}
	for _, o := range opts {
		o(s)
	}
	return s
}

// send delivers v unless the subscription ended first.
func send[T any](ctx context.Context, out chan<- T, v T) bool {
	select {
	case out <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

// authorizeExam lets admins and the exam's correctors follow it. Students never
// follow grading; other teachers get FORBIDDEN, an unknown exam NOT_FOUND.
func (s *Service) authorizeExam(ctx context.Context, examID string) error {
	v := viewer.FromContext(ctx)
	switch {
	case v == nil:
		return apperr.Unauthenticatedf("authentication required")
	case v.IsStudent():
		return apperr.Forbiddenf("students cannot follow grading")
	}
	ok, err := s.client.Exam.Query().Where(exam.ID(examID)).Exist(ctx)
	if err != nil {
		return fmt.Errorf("read exam %s: %w", examID, err)
	}
	if ok {
		return nil
	}
	exists, err := s.client.Exam.Query().Where(exam.ID(examID), exam.DeletedAtIsNil()).Exist(rules.System(ctx))
	switch {
	case err != nil:
		return fmt.Errorf("read exam %s: %w", examID, err)
	case exists:
		return apperr.Forbiddenf("you do not correct exam %s", examID)
	}
	return apperr.NotFoundf("exam %s not found", examID)
}

// subscribeThen subscribes to topic before anything is read, so that nothing
// committed after the snapshot can be missed.
func (s *Service) subscribe(ctx context.Context, topic string) (*pubsub.Subscription, error) {
	sub, err := s.broker.Subscribe(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	return sub, nil
}

// examStream is one exam subscription: snapshot reads the current state and the
// stamps deltas are ordered against; delta turns a notification into an event
// (nil: drop it; stop: end the stream). delta runs on the publishing goroutine
// under the stream's lock (liveStream): it must not block, so it reads nothing
// but the message, the state (which it may update) and ctx's values.
type examStream[E, S any] struct {
	name     string
	topic    string
	snapshot func(ctx context.Context, examID string) (*E, S, error)
	delta    func(ctx context.Context, examID string, m pubsub.Message, state S) (ev *E, stop bool)
}

// ---- copyLockChanged -------------------------------------------------------------

// CopyLockChanged streams the leases of an exam's copies: a SNAPSHOT of the live
// leases first, then one event per change. Teachers correcting the exam see
// every copy's lease holder (not the copies' content), as the CopyLock query
// rule allows.
func (s *Service) CopyLockChanged(ctx context.Context, examID string) (<-chan *CopyLockEvent, error) {
	return openLiveStream(ctx, s, examID, examStream[CopyLockEvent, map[string]time.Time]{
		name: "copyLockChanged", topic: examLocksTopic(examID), snapshot: s.lockSnapshot, delta: s.lockDelta,
	})
}

// lockDecoded is a lock notification and the event it becomes, decoded once
// per publish for every subscriber of the topic in this process
// (pubsub.Message.Decode), and read-only from then on.
type lockDecoded struct {
	lm lockMessage
	ev *CopyLockEvent
}

func decodeLock(payload []byte) (any, error) {
	var lm lockMessage
	if err := json.Unmarshal(payload, &lm); err != nil {
		return nil, err
	}
	copyID := lm.CopyID
	return &lockDecoded{lm: lm, ev: &CopyLockEvent{Kind: lm.Kind, ExamID: lm.ExamID, CopyID: &copyID,
		Owner: &LockHolder{ID: lm.OwnerID, Name: lm.OwnerName}, ExpiresAt: lm.ExpiresAt, At: lm.At}}, nil
}

// lockDelta turns a lock notification into an event, or nil to drop it. The
// event is shared by every subscriber that receives it.
func (s *Service) lockDelta(_ context.Context, examID string, m pubsub.Message, stamps map[string]time.Time) (*CopyLockEvent, bool) {
	v, err := m.Decode(decodeLock)
	if err != nil || v.(*lockDecoded).lm.ExamID != examID {
		s.log.Warn("realtime: undecodable lock event dropped", zap.String("topic", m.Topic), zap.Error(err))
		return nil, false
	}
	d := v.(*lockDecoded)
	// Ordered against the snapshot only: a notification whose change the
	// snapshot already shows (it committed before the read) is dropped.
	// Later notifications arrive in publish order, which is commit order.
	if at, ok := stamps[d.lm.CopyID]; ok && !d.lm.At.After(at) {
		return nil, false
	}
	return d.ev, false
}

// lockSnapshot reads the exam's live leases, and for every copy the commit time
// of its last lease change it knows of: the stamps notifications are compared to.
func (s *Service) lockSnapshot(ctx context.Context, examID string) (*CopyLockEvent, map[string]time.Time, error) {
	now := s.now().UTC()
	stamps := map[string]time.Time{}
	// Stamps are metadata (copy id, time), read on the server's behalf after
	// authorizeExam; recent lease ends first, then the leases themselves.
	ends, err := s.client.GradingEvent.Query().
		Where(gradingevent.HasCopyWith(examcopy.ExamID(examID)), gradingevent.ActionIn(leaseEnds...),
			gradingevent.AtGT(now.Add(-endWindow))).
		Select(gradingevent.FieldCopyID, gradingevent.FieldAt).
		All(rules.System(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("read lease ends of exam %s: %w", examID, err)
	}
	for _, e := range ends {
		if e.At.After(stamps[e.CopyID]) {
			stamps[e.CopyID] = e.At
		}
	}
	leases, err := s.client.CopyLock.Query().
		Where(copylock.HasCopyWith(examcopy.ExamID(examID))).
		WithOwner().
		Order(ent.Asc(copylock.FieldCopyID)).
		All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read leases of exam %s: %w", examID, err)
	}
	snap := &CopyLockEvent{Kind: LockSnapshot, ExamID: examID, At: now, Locks: []*CopyLockState{}}
	for _, l := range leases {
		// acquired_at is the time of the lease's last ACQUIRED or RENEWED.
		if l.AcquiredAt.After(stamps[l.CopyID]) {
			stamps[l.CopyID] = l.AcquiredAt
		}
		if !l.ExpiresAt.After(now) {
			continue // expired, not swept yet: EXPIRED follows
		}
		holder := &LockHolder{ID: l.OwnerID}
		if l.Edges.Owner != nil {
			holder.Name = l.Edges.Owner.Name
		}
		snap.Locks = append(snap.Locks, &CopyLockState{CopyID: l.CopyID, Owner: holder,
			AcquiredAt: l.AcquiredAt.UTC(), ExpiresAt: l.ExpiresAt.UTC()})
	}
	return snap, stamps, nil
}

// ---- copyStatusChanged -----------------------------------------------------------

// CopyStatusChanged streams the statuses of the exam's copies the viewer may see
// (a teacher: the copies assigned to them): a SNAPSHOT first, then one event per
// transition, ordered by the copy's version.
func (s *Service) CopyStatusChanged(ctx context.Context, examID string) (<-chan *CopyStatusEvent, error) {
	return openLiveStream(ctx, s, examID, examStream[CopyStatusEvent, map[string]int]{
		name: "copyStatusChanged", topic: examStatusTopic(examID), snapshot: s.statusSnapshot, delta: s.statusDelta,
	})
}

// statusDelta turns a status notification into an event, or nil to drop it;
// stop ends the stream (the request is gone).
func (s *Service) statusDelta(ctx context.Context, examID string, m pubsub.Message, versions map[string]int) (*CopyStatusEvent, bool) {
	v, err := m.Decode(decodeStatus)
	if err != nil || v.(*statusDecoded).sm.ExamID != examID {
		s.log.Warn("realtime: undecodable status event dropped", zap.String("topic", m.Topic), zap.Error(err))
		return nil, false
	}
	sm := &v.(*statusDecoded).sm
	if sm.Version <= versions[sm.CopyID] {
		return nil, false // the snapshot or an earlier event already showed it
	}
	if who := viewer.FromContext(ctx); !who.IsAdmin() && !statusVisibleTo(sm, who.UserID) {
		return nil, false
	}
	versions[sm.CopyID] = sm.Version
	return v.(*statusDecoded).ev, false
}

// statusVisibleTo is the queries' rule for a teacher (the copies assigned to
// them) applied to the copy as it was when the change committed, not when the
// event is delivered: a reassignment committing in between must not let the
// new corrector hear the copy's earlier events. The corrector a copy was taken
// from is told once, so it leaves their list. It needs no query per subscriber.
func statusVisibleTo(sm *statusMessage, userID string) bool {
	return userID != "" && (sm.AssigneeID == userID || sm.PreviousCorrectorID == userID)
}

// statusDecoded is lockDecoded for status notifications.
type statusDecoded struct {
	sm statusMessage
	ev *CopyStatusEvent
}

func decodeStatus(payload []byte) (any, error) {
	var sm statusMessage
	if err := json.Unmarshal(payload, &sm); err != nil {
		return nil, err
	}
	copyID, status, from, version := sm.CopyID, sm.Status, sm.From, sm.Version
	ev := &CopyStatusEvent{Kind: StatusChanged, ExamID: sm.ExamID, CopyID: &copyID, Status: &status,
		Version: &version, At: sm.At}
	if from != "" {
		ev.PreviousStatus = &from
	}
	if sm.CorrectorID != "" {
		ev.Kind = StatusAssigned
		to, prev := sm.CorrectorID, sm.PreviousCorrectorID
		ev.AssignedCorrectorID = &to
		if prev != "" {
			ev.PreviousCorrectorID = &prev
		}
	}
	return &statusDecoded{sm: sm, ev: ev}, nil
}

func (s *Service) statusSnapshot(ctx context.Context, examID string) (*CopyStatusEvent, map[string]int, error) {
	copies, err := s.client.ExamCopy.Query().
		Where(examcopy.ExamID(examID)).
		Order(ent.Asc(examcopy.FieldAnonymousID)).
		Select(examcopy.FieldID, examcopy.FieldStatus, examcopy.FieldVersion).
		All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read copies of exam %s: %w", examID, err)
	}
	snap := &CopyStatusEvent{Kind: StatusSnapshot, ExamID: examID, At: s.now().UTC(),
		Copies: make([]*CopyStatusState, 0, len(copies))}
	versions := make(map[string]int, len(copies))
	for _, c := range copies {
		versions[c.ID] = c.Version
		snap.Copies = append(snap.Copies, &CopyStatusState{CopyID: c.ID, Status: c.Status, Version: c.Version})
	}
	return snap, versions, nil
}

// ---- jobProgress -----------------------------------------------------------------

// JobProgress streams a job: its current row first, then every change of state
// or progress, and completes after a terminal state (SUCCEEDED, FAILED,
// CANCELLED). The row is re-read on every notification and every poll tick, so
// the stream never goes backwards.
func (s *Service) JobProgress(ctx context.Context, jobID string) (<-chan *ent.Job, error) {
	if viewer.FromContext(ctx) == nil {
		return nil, apperr.Unauthenticatedf("authentication required")
	}
	sub, err := s.subscribe(ctx, jobTopic(jobID))
	if err != nil {
		return nil, err
	}
	j, err := s.readJob(ctx, jobID)
	if err != nil {
		sub.Close()
		return nil, err
	}
	out := make(chan *ent.Job, 1)
	go s.runJob(ctx, sub, j, out)
	return out, nil
}

func (s *Service) readJob(ctx context.Context, jobID string) (*ent.Job, error) {
	j, err := s.client.Job.Get(ctx, jobID)
	if err == nil {
		return j, nil
	}
	if !ent.IsNotFound(err) {
		return nil, fmt.Errorf("read job %s: %w", jobID, err)
	}
	exists, err := s.client.Job.Query().Where(job.ID(jobID)).Exist(rules.System(ctx))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read job %s: %w", jobID, err)
	case exists:
		return nil, apperr.Forbiddenf("job %s is not yours", jobID)
	}
	return nil, apperr.NotFoundf("job %s not found", jobID)
}

func terminal(st job.State) bool {
	return st == job.StateSUCCEEDED || st == job.StateFAILED || st == job.StateCANCELLED
}

func jobChanged(old, cur *ent.Job) bool {
	return cur.State != old.State || cur.ProgressDone != old.ProgressDone ||
		cur.ProgressTotal != old.ProgressTotal || cur.Attempts != old.Attempts || !cur.UpdatedAt.Equal(old.UpdatedAt)
}

func (s *Service) runJob(ctx context.Context, sub *pubsub.Subscription, j *ent.Job, out chan<- *ent.Job) {
	defer close(out)
	defer sub.Close()
	if !send(ctx, out, j) || terminal(j.State) {
		return
	}
	tick := time.NewTicker(s.jobPoll)
	defer tick.Stop()
	msgs := sub.C()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-msgs:
			if !ok {
				msgs = nil // broker closed: keep polling until ctx ends
			}
		case <-tick.C:
		}
		cur, err := s.readJob(ctx, j.ID)
		switch {
		case ctx.Err() != nil:
			return
		case apperr.HasCode(err, apperr.NotFound) || apperr.HasCode(err, apperr.Forbidden):
			s.endOnError(ctx, "jobProgress", err)
			return
		case err != nil:
			s.log.Warn("realtime: read job failed; retrying at the next tick", zap.String("job", j.ID), zap.Error(err))
			continue
		}
		if !jobChanged(j, cur) || cur.UpdatedAt.Before(j.UpdatedAt) {
			continue
		}
		j = cur
		if !send(ctx, out, j) || terminal(j.State) {
			return
		}
	}
}

// endOnError ends a running subscription that can no longer be served (the
// viewer lost access, or the database failed on a resync). The client sees the
// operation complete and may subscribe again.
func (s *Service) endOnError(ctx context.Context, op string, err error) {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return
	}
	s.log.Info("realtime: subscription ended", zap.String("operation", op), zap.Error(err))
}
