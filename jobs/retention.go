package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/sqljson"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/job"
	"github.com/korrigo/korrigo/ent/predicate"
)

// DefaultExportRetention is how long an export's file is kept after its job
// finished (KORRIGO_EXPORT_RETENTION).
const DefaultExportRetention = 7 * 24 * time.Hour

// Keys of an export job's result written by the runner. The sha256 is the
// job's only reference to its Blob row: while it is there, blob collection
// keeps the file.
const (
	resultSHA256    = "sha256"
	resultExpired   = "expired"
	resultExpiredAt = "expiredAt"
)

var exportKinds = []job.Kind{job.KindEXPORT_GRADES, job.KindEXPORT_PDFS}

// hasExportFile: the job's result still names its file.
func hasExportFile() predicate.Job {
	return func(s *sql.Selector) {
		s.Where(sqljson.ValueIsNotNull(s.C(job.FieldResult), sqljson.Path(resultSHA256)))
	}
}

// exportNames is true for succeeded export jobs whose result names the blob sha.
func exportNames(sha string) predicate.Job {
	return func(s *sql.Selector) {
		s.Where(sqljson.ValueEQ(s.C(job.FieldResult), sha, sqljson.Path(resultSHA256)))
	}
}

// expireBatch bounds the jobs read at once by ExpireExports.
const expireBatch = 100

// ExpireExports drops the file of every export job that finished more than
// the retention (Config.ExportRetention; 0 keeps them forever) before at: in
// one short transaction per job, the result loses its sha256 and says
// expired/expiredAt (counts, filename, size stay) and the exporter audits it.
// The job row stays. The Blob row and file are then CollectBlobs' to remove,
// once nothing else (a copy, another export of identical bytes) names them.
func (s *Service) ExpireExports(ctx context.Context, at time.Time) (int, error) {
	if s.cfg.ExportRetention <= 0 {
		return 0, nil
	}
	ctx = system(ctx)
	cutoff := at.Add(-s.cfg.ExportRetention).UTC()
	expired := 0
	for {
		ids, err := s.cfg.DB.Client.Job.Query().
			Where(job.KindIn(exportKinds...), job.StateEQ(job.StateSUCCEEDED), job.FinishedAtLT(cutoff), hasExportFile()).
			Order(ent.Asc(job.FieldFinishedAt)).Limit(expireBatch).IDs(ctx)
		if err != nil {
			return expired, fmt.Errorf("list exports to expire: %w", err)
		}
		n := 0
		for _, id := range ids {
			ok, err := s.expireExport(ctx, id, at)
			if err != nil {
				return expired, err
			}
			if ok {
				n++
				s.publishID(ctx, id)
			}
		}
		expired += n
		// n == 0: whatever is left is another sweep's (or unchangeable);
		// stop rather than read the same rows again.
		if len(ids) < expireBatch || n == 0 {
			return expired, nil
		}
	}
}

// expireExport drops the file reference of one export job and reports
// whether it did (false: another sweep did first).
func (s *Service) expireExport(ctx context.Context, jobID string, at time.Time) (bool, error) {
	done := false
	err := db.WithTx(ctx, s.cfg.DB.Client, func(tx *ent.Tx) error {
		j, err := tx.Job.Query().Where(job.ID(jobID), job.StateEQ(job.StateSUCCEEDED), hasExportFile()).Only(ctx)
		if ent.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read export %s: %w", jobID, err)
		}
		result := map[string]any{}
		if err := json.Unmarshal(j.Result, &result); err != nil {
			return fmt.Errorf("export %s: result: %w", jobID, err)
		}
		sha := result[resultSHA256]
		delete(result, resultSHA256)
		result[resultExpired], result[resultExpiredAt] = true, at.UTC().Format(time.RFC3339Nano)
		raw, err := json.Marshal(result)
		if err != nil {
			return fmt.Errorf("export %s: result: %w", jobID, err)
		}
		// Conditional on the reference still being there: a concurrent sweep
		// that got the row first leaves nothing to do (and no second audit).
		n, err := tx.Job.Update().Where(job.ID(jobID), hasExportFile()).
			SetResult(raw).SetUpdatedAt(now()).Save(ctx)
		if err != nil || n == 0 {
			return err
		}
		if s.exporter != nil {
			meta := map[string]any{resultSHA256: sha}
			for k, v := range result {
				meta[k] = v
			}
			if err := s.exporter.ExportExpired(ctx, tx, j, meta); err != nil {
				return err
			}
		}
		done = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("expire export %s: %w", jobID, err)
	}
	if done {
		s.log.Info("export file expired", zap.String("job_id", jobID))
	}
	return done, nil
}

// SweepStorage is the hourly part of the sweep: expired exports lose their
// file reference (ExpireExports), then stale temp files and blobs nothing
// refers to any more go (CollectBlobs, for blobs a day old: an expired
// export's blob is older than the retention).
func (s *Service) SweepStorage(ctx context.Context) error {
	var errs []error
	if _, err := s.ExpireExports(ctx, now()); err != nil {
		errs = append(errs, fmt.Errorf("export expiry: %w", err))
	}
	if _, err := s.cfg.Store.RemoveStaleTemp(staleTempAge); err != nil {
		errs = append(errs, fmt.Errorf("temp sweep: %w", err))
	}
	if _, err := s.CollectBlobs(ctx, 24*time.Hour); err != nil {
		errs = append(errs, fmt.Errorf("blob collection: %w", err))
	}
	return errors.Join(errs...)
}
