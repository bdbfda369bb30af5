package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"entgo.io/ent/dialect"
	"go.uber.org/zap/zaptest"

	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/server"
	"github.com/korrigo/korrigo/server/servertest"
)

// testWorker is a `korrigo worker` in the test process.
type testWorker struct {
	app  *server.App
	addr string // its metrics listener
	stop func() error
}

// startWorker runs a worker the way cmd/korrigo's worker command does
// (LoadConfig, NewWorker, ListenWorkerMetrics, RunWorker) with these
// variables; stop is the SIGTERM path: it ends RunWorker's context and
// returns what RunWorker returned. The test's end stops it too.
func startWorker(t *testing.T, vars map[string]string) *testWorker {
	t.Helper()
	cfg, err := server.LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	app, err := server.NewWorker(ctx, cfg, zaptest.NewLogger(t))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := app.ListenWorkerMetrics()
	if err != nil {
		cancel()
		_ = app.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.RunWorker(ctx, ln) }()
	var result error
	stopped := false
	w := &testWorker{app: app, addr: ln.Addr().String(), stop: func() error {
		if !stopped {
			stopped = true
			cancel()
			result = errors.Join(<-done, app.Close())
		}
		return result
	}}
	t.Cleanup(func() {
		if err := w.stop(); err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	return w
}

// TestWorkerMetrics: a worker with KORRIGO_WORKER_METRICS_ADDR runs the
// import job a serve process (running no jobs) enqueued; its own /metrics
// shows that job's attempt duration and the PDF child it ran, the jobs
// collector and the Go/process collectors; /healthz answers. On stop the
// listener closes and RunWorker returns no error.
func TestWorkerMetrics(t *testing.T) {
	for _, dia := range dbtest.Dialects() {
		t.Run(dia, func(t *testing.T) {
			d, url := dbtest.OpenURL(t, dia)
			dataDir := t.TempDir() // the blobs serve stores are read by the worker
			env := servertest.NewWithEnv(t, d, map[string]string{"KORRIGO_DATA_DIR": dataDir})
			w := startWorker(t, map[string]string{
				"KORRIGO_DATABASE_URL":        url,
				"KORRIGO_DATA_DIR":            dataDir,
				"KORRIGO_WORKERS":             "1",
				"KORRIGO_WORKER_METRICS_ADDR": "127.0.0.1:0",
			})
			admin := env.Admin()
			waitJobSucceeded(t, env, admin, importCopy(t, env, admin, env.NewExam().ID))

			metrics := scrape(t, "http://"+w.addr+"/metrics", "")
			atLeast(t, metrics, `korrigo_job_duration_seconds_count{kind="IMPORT_COPY",outcome="succeeded"}`, 1)
			atLeast(t, metrics, `korrigo_pdf_render_duration_seconds_count{operation="import"}`, 1)
			atLeast(t, metrics, `korrigo_jobs{kind="IMPORT_COPY",state="SUCCEEDED"}`, 1)
			atLeast(t, metrics, `korrigo_job_queue_depth`, 0)
			atLeast(t, metrics, `go_goroutines`, 1)
			atLeast(t, metrics, `go_sql_max_open_connections{db_name="korrigo"}`, 0)
			// The upload was validated by serve, not by the worker.
			if strings.Contains(metrics, `operation="validate"`) {
				t.Errorf("the worker reports serve's PDF validation:\n%s", metrics)
			}

			resp, err := http.Get("http://" + w.addr + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("/healthz: %d", resp.StatusCode)
			}

			if err := w.stop(); err != nil {
				t.Fatalf("worker stop: %v", err)
			}
			if resp, err := http.Get("http://" + w.addr + "/healthz"); err == nil {
				resp.Body.Close()
				t.Fatalf("metrics listener still answers after the worker stopped: %d", resp.StatusCode)
			}
		})
	}
}

// In production the worker's /metrics wants KORRIGO_METRICS_TOKEN, as
// serve's does, and a production worker cannot start without one.
func TestWorkerMetricsToken(t *testing.T) {
	_, url := dbtest.OpenURL(t, dialect.SQLite)
	const token = "0123456789abcdef0123"
	vars := map[string]string{
		"KORRIGO_ENV":                 "production",
		"KORRIGO_DATABASE_URL":        url,
		"KORRIGO_DATA_DIR":            t.TempDir(),
		"KORRIGO_WORKER_METRICS_ADDR": "127.0.0.1:0",
	}
	if _, err := server.LoadConfig(func(k string) string { return vars[k] }); err == nil ||
		!strings.Contains(err.Error(), "KORRIGO_METRICS_TOKEN") {
		t.Fatalf("production worker without a metrics token: err = %v", err)
	}
	vars["KORRIGO_METRICS_TOKEN"] = token
	w := startWorker(t, vars)
	for _, auth := range []string{"", "Bearer wrong-token-0123456789", token, "Basic " + token} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+w.addr+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: %d, want 401 with WWW-Authenticate", auth, resp.StatusCode)
		}
	}
	if m := scrape(t, "http://"+w.addr+"/metrics", token); !strings.Contains(m, "go_goroutines") {
		t.Fatalf("/metrics with the token:\n%s", m)
	}

	// A taken address is a start-up error naming the variable.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	w.app.Config.WorkerMetricsAddr = busy.Addr().String()
	if ln, err := w.app.ListenWorkerMetrics(); err == nil || !strings.Contains(err.Error(), "KORRIGO_WORKER_METRICS_ADDR") {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("listen on a taken address: err = %v", err)
	}
}
