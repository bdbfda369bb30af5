package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/job"
	"github.com/korrigo/korrigo/pdf"
)

// system: the workers act on the server's behalf, after the request that asked
// for the job was authorized.
func system(ctx context.Context) context.Context { return rules.System(ctx) }

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

var (
	terminal = []job.State{job.StateSUCCEEDED, job.StateFAILED, job.StateCANCELLED}
	live     = []job.State{job.StateQUEUED, job.StateRUNNING, job.StateRETRYING}
)

// enqueue hands job j to River in tx, the transaction that recorded j.
func (s *Service) enqueue(ctx context.Context, tx *ent.Tx, j *ent.Job, args river.JobArgs) error {
	stx, err := sqlTx(tx)
	if err != nil {
		return err
	}
	res, err := s.client.InsertTx(ctx, stx, args, nil)
	if err != nil {
		return fmt.Errorf("insert river job: %w", err)
	}
	if err := tx.Job.UpdateOneID(j.ID).SetRiverJobID(res.Job.ID).Exec(system(ctx)); err != nil {
		return fmt.Errorf("link river job: %w", err)
	}
	j.RiverJobID = &res.Job.ID
	return nil
}

// EnqueueFinalize implements grading.JobEnqueuer: the FINALIZE_COPY job goes
// to River in the transaction that moved the copy to GRADING_IN_PROGRESS.
func (s *Service) EnqueueFinalize(ctx context.Context, tx *ent.Tx, j *ent.Job) error {
	if j.CopyID == nil {
		return errors.New("jobs: finalization job without a copy")
	}
	return s.enqueue(ctx, tx, j, finalizeArgs{JobID: j.ID})
}

// attempt is one run of a job by a worker.
type attempt struct {
	s            *Service
	job          *ent.Job
	rj           *rivertype.JobRow
	lastProgress time.Time
}

// begin loads our Job row and marks it RUNNING. ok is false when there is
// nothing to do: the row is gone or already ended (a retry of a job that
// `korrigo recover` or the sweeper closed, a duplicate delivery).
func (s *Service) begin(ctx context.Context, jobID string, rj *rivertype.JobRow) (*attempt, bool, error) {
	at := now()
	u := s.cfg.DB.Client.Job.Update().
		Where(job.ID(jobID), job.StateIn(live...)).
		SetState(job.StateRUNNING).
		SetAttempts(rj.Attempt).
		SetUpdatedAt(at)
	n, err := u.Save(system(ctx))
	if err != nil {
		return nil, false, fmt.Errorf("mark job %s running: %w", jobID, err)
	}
	if n == 0 {
		return nil, false, nil
	}
	// started_at is the first attempt's start.
	if err := s.cfg.DB.Client.Job.Update().Where(job.ID(jobID), job.StartedAtIsNil()).
		SetStartedAt(at).Exec(system(ctx)); err != nil {
		return nil, false, fmt.Errorf("mark job %s started: %w", jobID, err)
	}
	j, err := s.cfg.DB.Client.Job.Get(system(ctx), jobID)
	if err != nil {
		return nil, false, fmt.Errorf("read job %s: %w", jobID, err)
	}
	s.publish(ctx, j)
	return &attempt{s: s, job: j, rj: rj}, true, nil
}

// progress records done/total, at most every 200 ms except the first and
// last step.
func (a *attempt) progress(ctx context.Context, done, total int) {
	t := time.Now()
	if done != 0 && done != total && t.Sub(a.lastProgress) < 200*time.Millisecond {
		return
	}
	a.lastProgress = t
	j, err := a.s.cfg.DB.Client.Job.UpdateOneID(a.job.ID).
		Where(job.StateIn(live...)).
		SetProgressDone(done).SetProgressTotal(total).SetUpdatedAt(now()).
		Save(system(ctx))
	if err != nil {
		if !ent.IsNotFound(err) {
			a.s.log.Warn("record job progress", zap.String("job_id", a.job.ID), zap.Error(err))
		}
		return
	}
	a.s.publish(ctx, j)
}

// succeed ends the job in tx (with the work it committed).
func succeed(ctx context.Context, tx *ent.Tx, jobID string, result any) error {
	b, err := json.Marshal(result)
	if err != nil {
		return err
	}
	j, err := tx.Job.Get(system(ctx), jobID)
	if err != nil {
		return fmt.Errorf("read job %s: %w", jobID, err)
	}
	n, err := tx.Job.Update().Where(job.ID(jobID), job.StateIn(live...)).
		SetState(job.StateSUCCEEDED).SetFinishedAt(now()).SetUpdatedAt(now()).
		SetResult(b).ClearActiveKey().ClearError().
		SetProgressDone(max(j.ProgressTotal, j.ProgressDone)).
		Save(system(ctx))
	if err != nil {
		return fmt.Errorf("mark job %s succeeded: %w", jobID, err)
	}
	if n == 0 {
		return errJobClosed
	}
	return nil
}

// errJobClosed: the job was ended by someone else (recover, sweeper) while it
// ran; its work is rolled back.
var errJobClosed = errors.New("the job was closed while it ran")

// markFailed ends a job that will not be retried.
func (s *Service) markFailed(ctx context.Context, jobID, reason string) error {
	return db.WithTx(ctx, s.cfg.DB.Client, func(tx *ent.Tx) error {
		return tx.Job.Update().Where(job.ID(jobID), job.StateIn(live...)).
			SetState(job.StateFAILED).SetFinishedAt(now()).SetUpdatedAt(now()).
			SetError(truncate(reason, 2000)).ClearActiveKey().
			Exec(system(ctx))
	})
}

// fail handles a failed attempt: RETRYING with the reason when River will try
// again, else final (which must close the job) and FAILED. It returns what
// the worker returns to River.
func (a *attempt) fail(ctx context.Context, err error, final func(ctx context.Context, reason string) error) error {
	reason := readable(err)
	ctx = context.WithoutCancel(ctx) // record the outcome even when shutting down
	permanent := isPermanent(err)
	if !permanent && a.rj.Attempt < a.rj.MaxAttempts {
		uerr := a.s.cfg.DB.Client.Job.Update().Where(job.ID(a.job.ID), job.StateIn(live...)).
			SetState(job.StateRETRYING).SetError(truncate(reason, 2000)).SetUpdatedAt(now()).
			Exec(system(ctx))
		if uerr != nil {
			a.s.log.Warn("mark job retrying", zap.String("job_id", a.job.ID), zap.Error(uerr))
		}
		a.s.publishID(ctx, a.job.ID)
		return err
	}
	if ferr := final(ctx, reason); ferr != nil {
		a.s.log.Error("record job failure", zap.String("job_id", a.job.ID), zap.Error(ferr))
		return errors.Join(err, ferr) // River retries if it can; the sweeper closes it otherwise
	}
	a.s.publishID(ctx, a.job.ID)
	return river.JobCancel(err)
}

// safely runs fn, turning a panic into an error (River would recover it too,
// but then the job's last attempt could not record a readable failure).
// It is where every attempt that began ends, so it reports to Config.Observer.
func (s *Service) safely(ctx context.Context, a *attempt, fn func() error) (err error) {
	jobID := a.job.ID
	if o := s.cfg.Observer; o != nil {
		start := time.Now()
		defer func() { // runs after the recover below has set err
			outcome := "succeeded"
			if err != nil {
				outcome = "failed"
			}
			o.JobFinished(string(a.job.Kind), outcome, time.Since(start))
		}()
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("job panicked", zap.String("job_id", jobID), zap.Any("panic", p),
				zap.ByteString("stack", debug.Stack()))
			err = &internalError{msg: fmt.Sprintf("panic: %v", p)}
		}
	}()
	if h := s.cfg.Hooks; h != nil && h.BeforeWork != nil {
		h.BeforeWork(ctx, string(a.job.Kind), a.rj.Attempt)
	}
	return fn()
}

type internalError struct{ msg string }

func (e *internalError) Error() string { return e.msg }

// readable is the error as shown in the API (Job.error, Copy.gradingError):
// the PDF layer's messages are written for people; anything else is hidden.
func readable(err error) string {
	var ipe *pdf.InvalidPDFError
	var re *pdf.RunnerError
	var ie *internalError
	switch {
	case errors.As(err, &ipe):
		return ipe.Message
	case errors.As(err, &re):
		return re.Message
	case errors.As(err, &ie):
		return "internal error in the job (it crashed); see the server logs"
	case errors.Is(err, context.DeadlineExceeded):
		return "the job took too long and was stopped"
	case errors.Is(err, context.Canceled):
		return "the job was interrupted (server shutting down)"
	case errors.Is(err, errJobClosed):
		return errJobClosed.Error()
	}
	return "internal error in the job; see the server logs"
}

// isPermanent: retrying cannot help.
func isPermanent(err error) bool {
	var ipe *pdf.InvalidPDFError
	return errors.As(err, &ipe) || errors.Is(err, errJobClosed) || errors.Is(err, errPermanent)
}

var errPermanent = errors.New("permanent failure")

func (s *Service) publish(ctx context.Context, j *ent.Job) {
	if j != nil {
		s.publishID(ctx, j.ID)
	}
}

func (s *Service) publishID(ctx context.Context, id string) {
	if s.cfg.Progress != nil {
		s.cfg.Progress.JobChanged(context.WithoutCancel(ctx), id)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
