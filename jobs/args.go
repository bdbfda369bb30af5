package jobs

import (
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// River job arguments. They only name our Job row: what to work on is in its
// args column, written with it.

type splitArgs struct {
	JobID string `json:"jobId"`
}

func (splitArgs) Kind() string { return "korrigo_split_scan" }

type importArgs struct {
	JobID string `json:"jobId"`
}

func (importArgs) Kind() string { return "korrigo_import_copy" }

type finalizeArgs struct {
	JobID string `json:"jobId"`
}

func (finalizeArgs) Kind() string { return "korrigo_finalize_copy" }

type sweepArgs struct{}

func (sweepArgs) Kind() string { return "korrigo_sweep" }

// The sweep runs often and is cheap; one pending at a time is enough.
func (sweepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByArgs: true,
		ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateRetryable, rivertype.JobStateScheduled}}}
}

// scanParams are the args column of SPLIT_SCAN and IMPORT_COPY jobs.
type scanParams struct {
	BlobID    string  `json:"blobId"`
	StudentID *string `json:"studentId,omitempty"`
}
