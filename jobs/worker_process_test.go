package jobs_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestWorkerProcessMetrics: a real `korrigo worker` in production mode with
// KORRIGO_WORKER_METRICS_ADDR logs the address it listens on, serves the
// duration of the FINALIZE_COPY job it ran on /metrics to the metrics token
// only, and on SIGTERM exits 0 with the listener closed.
func TestWorkerProcessMetrics(t *testing.T) {
	p := newProcessEnv(t)
	env, dataDir := p.env, p.dataDir
	const token = "worker-metrics-token-0123456789"
	w := startKorrigo(t, p.bin, []string{"KORRIGO_DATABASE_URL=" + p.pgURL, "KORRIGO_DATA_DIR=" + dataDir,
		"KORRIGO_ENV=production", "KORRIGO_METRICS_TOKEN=" + token, "KORRIGO_WORKERS=1", "KORRIGO_LOG_LEVEL=info",
		"KORRIGO_WORKER_METRICS_ADDR=127.0.0.1:0"}, "worker")
	listening := regexp.MustCompile(`"msg":"worker metrics listening".*"addr":"([^"]+)"`)
	var addr string
	for deadline := time.Now().Add(3 * time.Minute); addr == ""; time.Sleep(50 * time.Millisecond) {
		if m := listening.FindStringSubmatch(w.out.String()); m != nil {
			addr = m[1]
		} else if w.cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("worker never logged its metrics address:\n%s", w.out.String())
		}
	}

	if j := waitJob(t, env, finalize(t, env, gradedCopy(t, env))); j.State != "SUCCEEDED" {
		t.Fatalf("finalize: %+v\n%s", j, w.out.String())
	}
	get := func(auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %d, want 401", code)
	}
	code, metrics := get("Bearer " + token)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, metrics)
	}
	m := regexp.MustCompile(`(?m)^korrigo_job_duration_seconds_count\{kind="FINALIZE_COPY",outcome="succeeded"\} (\S+)$`).
		FindStringSubmatch(metrics)
	if m == nil {
		t.Fatalf("the worker's /metrics lacks the finalize job's duration:\n%s", metrics)
	}
	if n, _ := strconv.ParseFloat(m[1], 64); n < 1 {
		t.Fatalf("finalize attempts observed: %v, want ≥ 1", n)
	}

	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("worker after SIGTERM: %v\n%s", err, w.out.String())
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("metrics listener still answers after the worker exited: %d", resp.StatusCode)
	}
}
