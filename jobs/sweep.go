package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/blob"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/job"
)

type sweepWorker struct {
	river.WorkerDefaults[sweepArgs]
	s *Service
}

// Work is the periodic sweep (River runs periodic jobs on the elected leader
// only): expired leases, jobs left behind by dead workers, copies stuck in
// GRADING_IN_PROGRESS, and, hourly, expired exports, stale temp files and
// unreferenced blobs (SweepStorage).
func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[sweepArgs]) error {
	s := w.s
	if _, err := s.cfg.Grading.SweepExpiredLocks(ctx, time.Now()); err != nil {
		s.log.Warn("lease sweep", zap.Error(err))
	}
	if _, err := s.RecoverStuck(ctx, RecoverOptions{Grace: time.Minute}); err != nil {
		s.log.Warn("stuck-state sweep", zap.Error(err))
	}
	if s.gcDue() {
		if err := s.SweepStorage(ctx); err != nil {
			s.log.Warn("storage sweep", zap.Error(err))
		}
	}
	return nil
}

var (
	gcMu   sync.Mutex
	lastGC = map[*Service]time.Time{}
)

func (s *Service) gcDue() bool {
	gcMu.Lock()
	defer gcMu.Unlock()
	if time.Since(lastGC[s]) < time.Hour {
		return false
	}
	lastGC[s] = time.Now()
	return true
}

// RecoverOptions tune RecoverStuck.
type RecoverOptions struct {
	// Grace: jobs and copies changed more recently than this are left alone
	// (a request may be committing right now).
	Grace time.Duration
	// WorkersStopped: the operator says no worker is running, so River jobs
	// still marked running belong to dead workers.
	WorkersStopped bool
}

// RecoverReport says what RecoverStuck, Recover did.
type RecoverReport struct {
	JobsFailed      int `json:"jobsFailed"`
	JobsRequeued    int `json:"jobsRequeued"`
	CopiesReset     int `json:"copiesReset"`
	TempFilesRemove int `json:"tempFilesRemoved"`
	BlobsRemoved    int `json:"blobsRemoved"`
}

const interrupted = "the job was interrupted (a worker stopped while running it); finalize the copy again"

// RecoverStuck closes jobs that can no longer progress (their River job is
// gone, finished, or — with WorkersStopped — owned by a dead worker), queues
// recorded jobs River never received, and moves copies stuck in
// GRADING_IN_PROGRESS without a live job to GRADING_FAILED.
func (s *Service) RecoverStuck(ctx context.Context, o RecoverOptions) (RecoverReport, error) {
	ctx = system(ctx)
	var rep RecoverReport
	cutoff := now().Add(-o.Grace)
	stuck, err := s.cfg.DB.Client.Job.Query().
		Where(job.StateIn(live...)).Order(ent.Asc(job.FieldUpdatedAt)).Limit(500).All(ctx)
	if err != nil {
		return rep, fmt.Errorf("list live jobs: %w", err)
	}
	for _, j := range stuck {
		if j.RiverJobID == nil {
			if j.UpdatedAt.After(cutoff) {
				continue // its request may still be committing
			}
			if err := s.requeue(ctx, j); err != nil {
				return rep, err
			}
			rep.JobsRequeued++
			continue
		}
		state, err := s.riverState(ctx, *j.RiverJobID)
		if err != nil {
			return rep, err
		}
		switch state {
		case "available", "pending", "scheduled", "retryable":
			continue
		case "running":
			if !o.WorkersStopped {
				continue // River's rescuer runs it again once it is overdue
			}
			if _, err := s.client.JobCancel(ctx, *j.RiverJobID); err != nil {
				s.log.Warn("cancel river job", zap.Int64("river_job_id", *j.RiverJobID), zap.Error(err))
			}
		}
		if err := s.closeStuck(ctx, j); err != nil {
			return rep, err
		}
		rep.JobsFailed++
	}
	copies, err := s.cfg.DB.Client.ExamCopy.Query().
		Where(examcopy.StatusEQ(examcopy.StatusGRADING_IN_PROGRESS), examcopy.UpdatedAtLT(cutoff),
			examcopy.Not(examcopy.HasJobsWith(job.KindEQ(job.KindFINALIZE_COPY), job.StateIn(live...)))).
		IDs(ctx)
	if err != nil {
		return rep, fmt.Errorf("list stuck copies: %w", err)
	}
	for _, id := range copies {
		if _, err := s.cfg.Grading.FailFinalize(ctx, id, interrupted); err != nil && !apperr.HasCode(err, apperr.InvalidTransition) {
			return rep, err
		}
		rep.CopiesReset++
	}
	return rep, nil
}

func (s *Service) requeue(ctx context.Context, j *ent.Job) error {
	var args river.JobArgs
	switch j.Kind {
	case job.KindSPLIT_SCAN:
		args = splitArgs{JobID: j.ID}
	case job.KindIMPORT_COPY:
		args = importArgs{JobID: j.ID}
	case job.KindFINALIZE_COPY:
		args = finalizeArgs{JobID: j.ID}
	default:
		return s.markFailed(ctx, j.ID, "this kind of job is not supported by this server")
	}
	return db.WithTx(ctx, s.cfg.DB.Client, func(tx *ent.Tx) error {
		n, err := tx.Job.Update().Where(job.ID(j.ID), job.RiverJobIDIsNil(), job.StateIn(live...)).
			SetUpdatedAt(now()).Save(ctx)
		if err != nil || n == 0 {
			return err
		}
		return s.enqueue(ctx, tx, j, args)
	})
}

// closeStuck ends a job that will not run again; a finalization also moves
// its copy to GRADING_FAILED.
func (s *Service) closeStuck(ctx context.Context, j *ent.Job) error {
	s.log.Warn("closing an interrupted job", zap.String("job_id", j.ID), zap.String("kind", string(j.Kind)))
	if j.Kind == job.KindFINALIZE_COPY && j.CopyID != nil {
		_, err := s.cfg.Grading.FailFinalize(ctx, *j.CopyID, interrupted)
		if err != nil && !apperr.HasCode(err, apperr.InvalidTransition) {
			return err
		}
		// FailFinalize closes the active job; this one may not be it.
	}
	return db.WithTx(ctx, s.cfg.DB.Client, func(tx *ent.Tx) error {
		return closeJob(ctx, tx, j.ID, job.StateFAILED, "the job was interrupted (its worker stopped); submit it again")
	})
}

// riverState is the state of River's job, "" when it no longer exists.
func (s *Service) riverState(ctx context.Context, id int64) (string, error) {
	q := "SELECT state FROM river_job WHERE id = ?"
	if s.cfg.DB.Dialect == dialect.Postgres {
		q = "SELECT state FROM river_job WHERE id = $1"
	}
	var state string
	err := s.cfg.DB.SQL.QueryRowContext(ctx, q, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read river job %d: %w", id, err)
	}
	return state, nil
}

// Recover is `korrigo recover`: RecoverStuck with no grace, then temp files
// and unreferenced blob files older than tempAge.
func (s *Service) Recover(ctx context.Context, o RecoverOptions, tempAge time.Duration) (RecoverReport, error) {
	rep, err := s.RecoverStuck(ctx, o)
	if err != nil {
		return rep, err
	}
	if rep.TempFilesRemove, err = s.cfg.Store.RemoveStaleTemp(tempAge); err != nil {
		return rep, err
	}
	if rep.BlobsRemoved, err = s.CollectBlobs(ctx, tempAge); err != nil {
		return rep, err
	}
	return rep, nil
}

// CollectBlobs deletes blobs nothing refers to and older than age: Blob rows
// no copy, live job or unexpired export names (with their files), and stored
// files without a row (left by a crash between the rename and the commit).
func (s *Service) CollectBlobs(ctx context.Context, age time.Duration) (int, error) {
	ctx = system(ctx)
	cutoff := time.Now().Add(-age)
	removed := 0
	rows, err := s.cfg.DB.Client.Blob.Query().Where(blob.CreatedAtLT(cutoff.UTC())).All(ctx)
	if err != nil {
		return 0, fmt.Errorf("list blobs: %w", err)
	}
	for _, b := range rows {
		// Put refreshes the file's time when it stores bytes that are there
		// already: a file touched since the cutoff is about to be named by a
		// row (again), so neither the row nor the file goes.
		if s.touchedSince(b.Sha256, cutoff) {
			continue
		}
		var gone bool
		err := db.WithTx(ctx, s.cfg.DB.Client, func(tx *ent.Tx) error {
			var err error
			gone, err = deleteUnreferencedBlob(ctx, tx, b.Sha256)
			return err
		})
		if err != nil {
			return removed, err
		}
		// Checked again once the row is gone: a Put since then belongs to a
		// transaction that inserts the row anew; if it fails, the orphan
		// pass below takes the file later.
		if gone && !s.touchedSince(b.Sha256, cutoff) {
			if err := s.cfg.Store.Delete(b.Sha256); err == nil {
				removed++
			}
		}
	}
	known := map[string]bool{}
	shas, err := s.cfg.DB.Client.Blob.Query().Select(blob.FieldSha256).Strings(ctx)
	if err != nil {
		return removed, err
	}
	for _, sha := range shas {
		known[sha] = true
	}
	err = s.cfg.Store.List(ctx, func(sha string, mod time.Time) error {
		if known[sha] || mod.After(cutoff) {
			return nil
		}
		if err := s.cfg.Store.Delete(sha); err == nil {
			removed++
		}
		return nil
	})
	return removed, err
}

// deleteUnreferencedBlob deletes the Blob row of sha when no copy, no live
// job and no unexpired export (its result's sha256) refers to it, and reports
// whether it did.
func deleteUnreferencedBlob(ctx context.Context, tx *ent.Tx, sha string) (bool, error) {
	ctx = system(ctx)
	b, err := tx.Blob.Query().Where(blob.Sha256(sha)).Only(ctx)
	if ent.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// The lock typedBlobRow takes: a transaction about to name this blob
	// commits first (and is seen below), or finds the row gone and inserts
	// it again.
	if n, err := tx.Blob.Update().Where(blob.ID(b.ID)).AddPages(0).Save(ctx); err != nil || n == 0 {
		return false, err
	}
	used, err := tx.ExamCopy.Query().Where(examcopy.Or(examcopy.SourceBlobID(b.ID), examcopy.FinalBlobID(b.ID))).Exist(ctx)
	if err != nil || used {
		return false, err
	}
	if b.DerivedKey != nil {
		// A rendering of another blob (masked pages) lives as long as it.
		if srcSHA := derivedSource(*b.DerivedKey); srcSHA != "" {
			alive, err := tx.Blob.Query().Where(blob.Sha256(srcSHA)).Exist(ctx)
			if err != nil || alive {
				return false, err
			}
		}
	}
	// Content addressing: identical export files (the same grades exported
	// twice) share one row, which stays while any of them is unexpired.
	exported, err := tx.Job.Query().Where(job.KindIn(exportKinds...), job.StateEQ(job.StateSUCCEEDED),
		exportNames(sha)).Exist(ctx)
	if err != nil || exported {
		return false, err
	}
	pending, err := tx.Job.Query().Where(job.StateIn(live...), job.KindIn(job.KindSPLIT_SCAN, job.KindIMPORT_COPY)).All(ctx)
	if err != nil {
		return false, err
	}
	for _, j := range pending {
		var p scanParams
		if json.Unmarshal(j.Args, &p) == nil && p.BlobID == b.ID {
			return false, nil
		}
	}
	return true, tx.Blob.DeleteOne(b).Exec(ctx)
}

// touchedSince reports whether the stored file of sha was written or reused
// (storage.FS.Put refreshes its time) after t. A file that cannot be
// inspected counts as touched: it is not deleted on a guess.
func (s *Service) touchedSince(sha string, t time.Time) bool {
	mod, ok, err := s.cfg.Store.ModTime(sha)
	if err != nil {
		s.log.Warn("inspect blob file", zap.String("sha256", sha), zap.Error(err))
		return true
	}
	return ok && mod.After(t)
}

// tempFiles lists the names in the store's temp directory (tests).
func (s *Service) tempFiles() []string {
	entries, _ := os.ReadDir(filepath.Join(s.cfg.Store.Root(), ".tmp"))
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "probe-") {
			out = append(out, e.Name())
		}
	}
	return out
}
