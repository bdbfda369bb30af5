// Package jobs runs Korrigo's durable background work on River (DESIGN.md §8,
// §9): splitting a class scan into copies (SPLIT_SCAN), importing one student's
// PDF (IMPORT_COPY), rendering a copy's final PDF (FINALIZE_COPY), and the
// periodic sweeps (expired leases, stuck states, expired exports, stale temp
// files, unreferenced blobs).
//
// Two records describe a job. Our Job row (ent) is what the API shows — kind,
// state, progress, error, result, timestamps — and what the rest of the code
// reasons about (its active_key makes "one finalization per copy" a unique
// index). River's river_job row is the execution record: it holds the job until
// a worker takes it, retries it with backoff, and rescues it when a worker dies.
// Both are written in the same transaction when a job is requested, and the
// worker keeps our row in step as it runs (RUNNING, progress, RETRYING,
// SUCCEEDED or FAILED).
//
// Every PDF operation on user data goes through pdf.Runner, a child process
// with a time and memory limit, and never inside a database transaction.
package jobs

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/grading"
	"github.com/korrigo/korrigo/pdf"
	"github.com/korrigo/korrigo/storage"
)

// ProgressPublisher is told after each committed change of a job (state,
// progress), for the jobProgress subscription, which re-reads the row. It
// must not block. Nil publishes nothing. realtime.Publisher implements it.
type ProgressPublisher interface {
	JobChanged(ctx context.Context, jobID string)
}

// Observer is told when a job attempt ends (metrics). It must not block.
// kind is the Job kind (SPLIT_SCAN, ...); outcome is "succeeded" or "failed"
// (a failed attempt may be retried); d is the attempt's work time.
type Observer interface {
	JobFinished(kind, outcome string, d time.Duration)
}

// Defaults of Config.
const (
	DefaultMaxAttempts  = 3
	DefaultRetryBase    = 10 * time.Second
	DefaultPollInterval = 500 * time.Millisecond
	DefaultWorkers      = 2
	// MaxUploadBytes is the largest scan or copy accepted (DESIGN.md §9).
	MaxUploadBytes = 50 << 20
	// MaxPages is the largest page count of an upload.
	MaxPages = 500
	// staleTempAge: temp files older than this were left by a dead process.
	staleTempAge = 6 * time.Hour
)

// Config wires a Service.
type Config struct {
	DB      *db.DB
	Store   *storage.FS
	Runner  *pdf.Runner
	Grading *grading.Service
	Logger  *zap.Logger
	// Progress is told of every job change; nil = nobody.
	Progress ProgressPublisher
	// Workers is how many jobs this process runs at once; 0 makes an
	// insert-only client (a serve process that leaves the work to `korrigo
	// worker` processes).
	Workers int
	// PollInterval is how often idle workers look for jobs (≥ 100 ms:
	// River's fetch cooldown). Both drivers run in poll mode.
	PollInterval time.Duration
	// MaxAttempts of PDF work before the job fails for good.
	MaxAttempts int
	// RetryBase is the first retry's delay; each next one is 4× longer.
	RetryBase time.Duration
	// RescueAfter is how long a job may stay running before River assumes its
	// worker died and runs it again. Default: the runner's timeout + 5 min.
	RescueAfter time.Duration
	// SweepInterval of the periodic sweep (expired leases, stuck states,
	// stale temp files). Default 5 s for leases; stuck states are checked
	// on the same tick.
	SweepInterval time.Duration
	// ExportRetention: an export's file is dropped this long after its job
	// finished (ExpireExports, hourly); 0 keeps exports forever. The server
	// sets it from KORRIGO_EXPORT_RETENTION (default DefaultExportRetention).
	ExportRetention time.Duration
	// Hooks are for tests: code that runs inside a worker.
	Hooks *Hooks
	// Observer is told of every attempt's end; nil = nobody.
	Observer Observer
}

// Hooks let tests inject failures inside workers.
type Hooks struct {
	// BeforeWork runs when a worker starts an attempt; it may panic or
	// block (honouring ctx) to simulate a broken or hung job.
	BeforeWork func(ctx context.Context, kind string, attempt int)
	// AfterPDF runs after the PDF step of a job, before anything is stored.
	AfterPDF func(ctx context.Context, kind string, attempt int) error
	// AfterStore runs once a job's files are in the blob store and before
	// any row names them (a crash here leaves unrecorded files).
	AfterStore func(ctx context.Context, kind string, attempt int) error
}

// Service requests jobs and, when it has workers, runs them.
type Service struct {
	cfg    Config
	log    *zap.Logger
	client *river.Client[*sql.Tx]
	// exporter builds EXPORT_GRADES files (office); nil fails those jobs.
	exporter Exporter

	startMu sync.Mutex
	started bool
}

// New builds the River client over cfg.DB (riverdatabasesql over lib/pq for
// PostgreSQL, riversqlite over modernc for SQLite). It does not start workers:
// call Start.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Store == nil || cfg.Runner == nil {
		return nil, errors.New("jobs: DB, Store and Runner are required")
	}
	cfg = normalize(cfg)
	s := &Service{cfg: cfg, log: cfg.Logger}
	if err := s.build(); err != nil {
		return nil, err
	}
	return s, nil
}

func normalize(cfg Config) Config {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	cfg.PollInterval = max(cfg.PollInterval, 100*time.Millisecond)
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = DefaultRetryBase
	}
	runnerTimeout := cfg.Runner.Timeout
	if runnerTimeout == 0 {
		runnerTimeout = pdf.DefaultTimeout
	}
	if cfg.RescueAfter == 0 {
		cfg.RescueAfter = runnerTimeout + 5*time.Minute
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = 5 * time.Second
	}
	return cfg
}

// build makes the River client for s.cfg.
func (s *Service) build() error {
	cfg := s.cfg
	runnerTimeout := cmp.Or(cfg.Runner.Timeout, pdf.DefaultTimeout)
	workers := river.NewWorkers()
	river.AddWorker(workers, &splitWorker{s: s})
	river.AddWorker(workers, &importWorker{s: s})
	river.AddWorker(workers, &finalizeWorker{s: s})
	river.AddWorker(workers, &sweepWorker{s: s})
	river.AddWorker(workers, &exportWorker{s: s})
	rc := &river.Config{
		Logger:               slog.New(slog.NewTextHandler(zapWriter{cfg.Logger.Named("river")}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Workers:              workers,
		MaxAttempts:          cfg.MaxAttempts,
		RetryPolicy:          retryPolicy{base: cfg.RetryBase},
		FetchPollInterval:    cfg.PollInterval,
		FetchCooldown:        min(cfg.PollInterval, 100*time.Millisecond),
		PollOnly:             true,
		RescueStuckJobsAfter: cfg.RescueAfter,
		// A PDF job's own limit is the runner's; River's is a backstop.
		JobTimeout:   runnerTimeout + 2*time.Minute,
		ErrorHandler: errorHandler{log: cfg.Logger.Named("river")},
	}
	if cfg.Workers > 0 {
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}}
		rc.PeriodicJobs = []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(cfg.SweepInterval),
				func() (river.JobArgs, *river.InsertOpts) { return sweepArgs{}, nil },
				&river.PeriodicJobOpts{ID: "sweep"}),
		}
	}
	var err error
	if cfg.DB.Dialect == dialect.Postgres {
		s.client, err = river.NewClient(riverdatabasesql.New(cfg.DB.SQL), rc)
	} else {
		s.client, err = river.NewClient(riversqlite.New(cfg.DB.SQL), rc)
	}
	if err != nil {
		return fmt.Errorf("jobs: river client: %w", err)
	}
	return nil
}

// SetGrading gives the service the grading service it reports finalizations
// to (grading needs the service as its JobEnqueuer first). Call before Start.
func (s *Service) SetGrading(g *grading.Service) { s.cfg.Grading = g }

// Reconfigure changes the configuration before Start (tests: fast retries,
// hooks) and rebuilds the River client.
func (s *Service) Reconfigure(fn func(*Config)) error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.started {
		return errors.New("jobs: reconfigure after start")
	}
	cfg := s.cfg
	fn(&cfg)
	s.cfg = normalize(cfg)
	s.log = s.cfg.Logger
	return s.build()
}

// Start runs the workers until ctx ends or Stop is called. An insert-only
// service (Workers = 0) has nothing to start.
func (s *Service) Start(ctx context.Context) error {
	if s.cfg.Workers == 0 {
		return nil
	}
	if s.cfg.Grading == nil {
		return errors.New("jobs: no grading service")
	}
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.started {
		return nil
	}
	if err := s.client.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	s.started = true
	return nil
}

// Stop lets running jobs finish (graceful shutdown) until ctx ends, then
// cancels them; River runs a cancelled job again later.
func (s *Service) Stop(ctx context.Context) error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if !s.started {
		return nil
	}
	s.started = false
	err := s.client.Stop(ctx)
	if err != nil && ctx.Err() != nil {
		hard, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = s.client.StopAndCancel(hard)
	}
	return err
}

// Runner is the PDF runner the service uses (uploads validate through it).
func (s *Service) Runner() *pdf.Runner { return s.cfg.Runner }

// Store is the blob store.
func (s *Service) Store() *storage.FS { return s.cfg.Store }

// retryPolicy: base, 4×base, 16×base…
type retryPolicy struct{ base time.Duration }

func (p retryPolicy) NextRetry(j *rivertype.JobRow) time.Time {
	n := max(len(j.Errors), 1)
	d := time.Duration(float64(p.base) * math.Pow(4, float64(n-1)))
	return time.Now().Add(d)
}

type errorHandler struct{ log *zap.Logger }

func (h errorHandler) HandleError(_ context.Context, j *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	h.log.Warn("job attempt failed", zap.Int64("river_job_id", j.ID), zap.String("kind", j.Kind),
		zap.Int("attempt", j.Attempt), zap.Error(err))
	return nil
}

func (h errorHandler) HandlePanic(_ context.Context, j *rivertype.JobRow, v any, trace string) *river.ErrorHandlerResult {
	h.log.Error("job panicked", zap.Int64("river_job_id", j.ID), zap.String("kind", j.Kind),
		zap.Any("panic", v), zap.String("stack", trace))
	return nil
}

// zapWriter hands River's slog lines (warnings and errors only) to zap.
type zapWriter struct{ log *zap.Logger }

func (w zapWriter) Write(p []byte) (int, error) {
	w.log.Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}
