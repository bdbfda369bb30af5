package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/jobs"
	"github.com/korrigo/korrigo/pdf"
	"github.com/korrigo/korrigo/storage"
)

// pdfRunner is the isolated PDF subprocess runner: this binary's `pdf`
// command, with the configured time and memory limits (KORRIGO_PDF_TIMEOUT,
// default 60s; KORRIGO_PDF_MEMORY_LIMIT_MB, default 1024).
func pdfRunner(log *zap.Logger, cfg Config) *pdf.Runner {
	r := &pdf.Runner{Logger: log.Named("pdf"), Timeout: cfg.PDFTimeout, MemoryLimit: int64(cfg.PDFMemoryLimitMB) << 20}
	tmp := filepath.Join(cfg.DataDir, "tmp")
	if os.MkdirAll(tmp, 0o750) == nil {
		r.TempDir = tmp
	}
	return r
}

// newJobs builds the job service: blob store under KORRIGO_DATA_DIR/blobs, PDF
// runner, River client, with cfg.ServeWorkers workers in this process.
// m receives job attempt and PDF child durations.
func newJobs(cfg Config, log *zap.Logger, d *db.DB, progress jobs.ProgressPublisher, m *metrics) (*jobs.Service, error) {
	store, err := storage.New(filepath.Join(cfg.DataDir, "blobs"))
	if err != nil {
		return nil, err
	}
	runner := pdfRunner(log, cfg)
	runner.Observe = m.pdfRendered
	return jobs.New(jobs.Config{DB: d, Store: store, Runner: runner, Logger: log.Named("jobs"), Progress: progress,
		Workers: cfg.ServeWorkers, ExportRetention: cfg.ExportRetention, Hooks: testHooks(cfg, log), Observer: m})
}

// testHooks wires KORRIGO_TEST_BLOCK_JOB (never set in production; Validate
// refuses it there): crash tests kill a real worker while it holds a job.
func testHooks(cfg Config, log *zap.Logger) *jobs.Hooks {
	kind := cfg.TestBlockJob
	if kind == "" {
		return nil
	}
	log.Warn("test hook: jobs of this kind block after storing their files", zap.String("kind", kind))
	return &jobs.Hooks{AfterStore: func(ctx context.Context, k string, _ int) error {
		if k != kind {
			return nil
		}
		_ = os.WriteFile(filepath.Join(cfg.DataDir, "test-blocked-"+k), nil, 0o600)
		<-ctx.Done()
		return ctx.Err()
	}}
}

// NewWorker wires what `korrigo worker` needs: the database, grading and the
// job service with cfg.Workers workers, and no HTTP server.
func NewWorker(ctx context.Context, cfg Config, log *zap.Logger) (*App, error) {
	cfg.ServeWorkers = cfg.Workers
	return NewApp(ctx, cfg, log)
}

// ListenWorkerMetrics opens the worker's metrics listener on
// KORRIGO_WORKER_METRICS_ADDR; nil when the variable is unset.
func (a *App) ListenWorkerMetrics() (net.Listener, error) {
	addr := a.Config.WorkerMetricsAddr
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("KORRIGO_WORKER_METRICS_ADDR: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// RunWorker is `korrigo worker`: the job workers until ctx ends (RunJobs)
// and, on ln when it is not nil, /metrics and /healthz. The listener outlives
// the workers' graceful stop, so that a scrape during the drain still sees
// the jobs that end in it; it is shut down last.
func (a *App) RunWorker(ctx context.Context, ln net.Listener) error {
	if ln == nil {
		return a.RunJobs(ctx)
	}
	log := a.Log.Named("http")
	mux := http.NewServeMux()
	a.operatorRoutes(mux)
	srv := a.newHTTPServer(context.Background(), a.metrics.instrument(withRecover(log, a.reporter, mux)))
	served := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if !errors.Is(err, http.ErrServerClosed) {
			// The jobs go on without metrics: say so now, not at shutdown.
			log.Error("worker metrics listener stopped", zap.Error(err))
		}
		served <- err
	}()
	a.Log.Info("worker metrics listening", zap.String("addr", ln.Addr().String()))
	err := a.RunJobs(ctx)
	stop, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(stop); serr != nil {
		err = errors.Join(err, fmt.Errorf("worker metrics: shutdown: %w", serr))
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("worker metrics: %w", serr))
	}
	return err
}

// RunJobs runs the job workers until ctx ends, then stops them gracefully
// (running jobs may finish within the shutdown budget).
func (a *App) RunJobs(ctx context.Context) error {
	if err := a.Services.Jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	<-ctx.Done()
	stop, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	defer cancel()
	return a.Services.Jobs.Stop(stop)
}
