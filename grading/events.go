package grading

import (
	"time"

	"github.com/korrigo/korrigo/ent/examcopy"
)

// LockEventKind says what happened to a copy's grading lease.
type LockEventKind string

const (
	LockAcquired LockEventKind = "ACQUIRED" // a new lease (new token)
	LockRenewed  LockEventKind = "RENEWED"  // the holder extended it
	LockReleased LockEventKind = "RELEASED" // the holder ended it, or finalization did
	LockExpired  LockEventKind = "EXPIRED"  // the sweeper removed it after expiry
	LockBroken   LockEventKind = "BROKEN"   // an admin ended it
)

// LockEvent is published after a lease change committed. Owner is the lease's
// holder (the former holder when the lease ended). ExpiresAt is zero when the lease
// ended. CopyVersion is the copy's version when the change committed: lease
// changes do not bump it, so subscribers order lock events by At.
type LockEvent struct {
	ExamID      string
	CopyID      string
	Kind        LockEventKind
	OwnerID     string
	OwnerName   string
	ExpiresAt   time.Time
	CopyVersion int
	At          time.Time
}

// StatusEvent is published after a status transition committed. CopyVersion is the
// copy's version after the transition: a subscriber drops an event whose version
// is not newer than its snapshot.
type StatusEvent struct {
	ExamID      string
	CopyID      string
	From        examcopy.Status
	Status      examcopy.Status
	CopyVersion int
	ActorID     string // empty for the server's own transitions (job worker)
	At          time.Time
	// CorrectorID is set when the event reports an assignment (dispatch,
	// reassignment: From == Status) and names the new corrector;
	// PreviousCorrectorID the one the copy was taken from, if any.
	CorrectorID, PreviousCorrectorID string
	// AssigneeID is the copy's corrector once the change is committed ("" when
	// unassigned). Subscribers decide from it which teachers may hear the
	// event: as things stood at commit, not when the event is delivered.
	AssigneeID string
}

// Audit-trail actions (GradingEvent.action) recorded by this package.
const (
	ActionLockAcquired      = "LOCK_ACQUIRED"
	ActionLockReleased      = "LOCK_RELEASED"
	ActionLockBroken        = "LOCK_BROKEN"
	ActionLockExpired       = "LOCK_EXPIRED"
	ActionMarkReady         = "MARK_READY"
	ActionFinalize          = "FINALIZE"
	ActionFinalizeSucceeded = "FINALIZE_SUCCEEDED"
	ActionFinalizeFailed    = "FINALIZE_FAILED"
)
