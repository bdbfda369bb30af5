package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
)

// Exporter builds the file of an EXPORT_GRADES job from its Job row and
// returns the job's result (office.Service implements it). A typed
// (*apperr.Error) failure is final and shown as the job's error.
type Exporter interface {
	BuildExport(ctx context.Context, j *ent.Job) (any, error)
}

// SetExporter sets who builds EXPORT_GRADES files. Call before Start.
func (s *Service) SetExporter(e Exporter) { s.exporter = e }

type exportArgs struct {
	JobID string `json:"jobId"`
}

func (exportArgs) Kind() string { return "korrigo_export_grades" }

// EnqueueExport hands an EXPORT_GRADES job to River in tx, the transaction
// that recorded it.
func (s *Service) EnqueueExport(ctx context.Context, tx *ent.Tx, j *ent.Job) error {
	return s.enqueue(ctx, tx, j, exportArgs{JobID: j.ID})
}

type exportWorker struct {
	river.WorkerDefaults[exportArgs]
	s *Service
}

func (w *exportWorker) Work(ctx context.Context, rj *river.Job[exportArgs]) error {
	s := w.s
	a, ok, err := s.begin(ctx, rj.Args.JobID, rj.JobRow)
	if err != nil || !ok {
		return err
	}
	err = s.safely(ctx, a, func() error {
		if s.exporter == nil {
			return fmt.Errorf("%w: no exporter configured", errPermanent)
		}
		result, err := s.exporter.BuildExport(ctx, a.job)
		if err != nil {
			return err
		}
		return db.WithTx(ctx, s.cfg.DB.Client, func(tx *ent.Tx) error { return succeed(ctx, tx, a.job.ID, result) })
	})
	if err == nil {
		s.publishID(ctx, a.job.ID)
		return nil
	}
	var typed *apperr.Error
	if errors.As(err, &typed) { // what blocks the export: final, in the user's words
		if ferr := s.markFailed(context.WithoutCancel(ctx), a.job.ID, typed.Message); ferr != nil {
			return errors.Join(err, ferr)
		}
		s.publishID(ctx, a.job.ID)
		return river.JobCancel(err)
	}
	return a.fail(ctx, err, func(ctx context.Context, reason string) error { return s.markFailed(ctx, a.job.ID, reason) })
}
