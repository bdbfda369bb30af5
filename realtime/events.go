// Package realtime is the live side of Korrigo (DESIGN.md §10): it publishes the
// grading services' committed changes on pubsub topics and turns topics into
// GraphQL subscriptions that start with a snapshot of the current state and then
// carry the changes, in order, to the viewers allowed to see them.
//
// The database is the truth, events are notifications. Every subscription
// subscribes to its topic first and reads the snapshot second, so nothing
// published after the read can be missed; each change carries a stamp (the
// copy's version for statuses, the lease's commit time for locks) and a change
// whose stamp is not newer than what the subscriber already showed for that copy
// is dropped, so a change that raced the snapshot never shows an older state.
// When the broker reports a possible loss (pubsub.Message.Resync), the
// subscription re-reads and re-sends the snapshot.
package realtime

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/korrigo/korrigo/ent/examcopy"
)

// Topic names. Exam ids and job ids are opaque strings without dots.
func examLocksTopic(examID string) string  { return "exam." + examID + ".locks" }
func examStatusTopic(examID string) string { return "exam." + examID + ".status" }
func jobTopic(jobID string) string         { return "job." + jobID }

// CopyLockEventKind says what a CopyLockEvent reports.
type CopyLockEventKind string

const (
	// LockSnapshot lists every live lease of the exam's copies (Locks); it is
	// the first message of a subscription and follows every resync.
	LockSnapshot CopyLockEventKind = "SNAPSHOT"
	LockAcquired CopyLockEventKind = "ACQUIRED"
	LockRenewed  CopyLockEventKind = "RENEWED"
	LockReleased CopyLockEventKind = "RELEASED"
	LockExpired  CopyLockEventKind = "EXPIRED"
	LockBroken   CopyLockEventKind = "BROKEN"
)

// CopyStatusEventKind says what a CopyStatusEvent reports.
type CopyStatusEventKind string

const (
	// StatusSnapshot lists the status of every copy of the exam the viewer may
	// see (Copies); first message and after every resync.
	StatusSnapshot CopyStatusEventKind = "SNAPSHOT"
	// StatusChanged reports one copy's transition.
	StatusChanged CopyStatusEventKind = "CHANGED"
	// StatusAssigned reports that a copy was given to a corrector (dispatch,
	// reassignment); its status is unchanged, its version moved on.
	StatusAssigned CopyStatusEventKind = "ASSIGNED"
)

// LockHolder is who holds (or held) a lease: a teacher or an admin, never a student.
type LockHolder struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CopyLockState is one live lease in a snapshot.
type CopyLockState struct {
	CopyID     string      `json:"copyId"`
	Owner      *LockHolder `json:"owner"`
	AcquiredAt time.Time   `json:"acquiredAt"`
	ExpiresAt  time.Time   `json:"expiresAt"`
}

// CopyLockEvent is one message of copyLockChanged.
type CopyLockEvent struct {
	Kind   CopyLockEventKind `json:"kind"`
	ExamID string            `json:"examId"`
	// CopyID, Owner: the copy whose lease changed and its (former) holder;
	// nil for SNAPSHOT.
	CopyID *string     `json:"copyId"`
	Owner  *LockHolder `json:"owner"`
	// ExpiresAt is set while the lease lives (ACQUIRED, RENEWED).
	ExpiresAt *time.Time `json:"expiresAt"`
	// At is when the change committed (server clock), or when the snapshot was read.
	At time.Time `json:"at"`
	// Locks is set for SNAPSHOT only.
	Locks []*CopyLockState `json:"locks"`
}

// CopyStatusState is one copy in a snapshot.
type CopyStatusState struct {
	CopyID  string          `json:"copyId"`
	Status  examcopy.Status `json:"status"`
	Version int             `json:"version"`
}

// CopyStatusEvent is one message of copyStatusChanged.
type CopyStatusEvent struct {
	Kind   CopyStatusEventKind `json:"kind"`
	ExamID string              `json:"examId"`
	// CopyID, Status, PreviousStatus, Version are set for CHANGED.
	CopyID         *string          `json:"copyId"`
	Status         *examcopy.Status `json:"status"`
	PreviousStatus *examcopy.Status `json:"previousStatus"`
	Version        *int             `json:"version"`
	// AssignedCorrectorID, PreviousCorrectorID are set for ASSIGNED.
	AssignedCorrectorID *string   `json:"assignedCorrectorId"`
	PreviousCorrectorID *string   `json:"previousCorrectorId"`
	At                  time.Time `json:"at"`
	// Copies is set for SNAPSHOT only.
	Copies []*CopyStatusState `json:"copies"`
}

// Wire formats on the broker. They carry identifiers and stamps, never student data.

type lockMessage struct {
	ExamID    string            `json:"examId"`
	CopyID    string            `json:"copyId"`
	Kind      CopyLockEventKind `json:"kind"`
	OwnerID   string            `json:"ownerId"`
	OwnerName string            `json:"ownerName"`
	ExpiresAt *time.Time        `json:"expiresAt,omitempty"`
	At        time.Time         `json:"at"`
}

type statusMessage struct {
	ExamID  string          `json:"examId"`
	CopyID  string          `json:"copyId"`
	From    examcopy.Status `json:"from"`
	Status  examcopy.Status `json:"status"`
	Version int             `json:"version"`
	At      time.Time       `json:"at"`
	// Set for assignments only.
	CorrectorID         string `json:"correctorId,omitempty"`
	PreviousCorrectorID string `json:"previousCorrectorId,omitempty"`
	// The copy's corrector after the change, on every message: who may hear it.
	AssigneeID string `json:"assigneeId,omitempty"`
}

type jobMessage struct {
	JobID string `json:"jobId"`
}

// GraphQL enum marshalling (gqlgen binds the SDL enums to these types).

// MarshalGQL writes the enum value.
func (k CopyLockEventKind) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, strconv.Quote(string(k)))
}

// UnmarshalGQL reads the enum value.
func (k *CopyLockEventKind) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("CopyLockEventKind must be a string")
	}
	switch CopyLockEventKind(s) {
	case LockSnapshot, LockAcquired, LockRenewed, LockReleased, LockExpired, LockBroken:
		*k = CopyLockEventKind(s)
		return nil
	}
	return fmt.Errorf("%q is not a valid CopyLockEventKind", s)
}

// MarshalGQL writes the enum value.
func (k CopyStatusEventKind) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, strconv.Quote(string(k)))
}

// UnmarshalGQL reads the enum value.
func (k *CopyStatusEventKind) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("CopyStatusEventKind must be a string")
	}
	switch CopyStatusEventKind(s) {
	case StatusSnapshot, StatusChanged, StatusAssigned:
		*k = CopyStatusEventKind(s)
		return nil
	}
	return fmt.Errorf("%q is not a valid CopyStatusEventKind", s)
}
