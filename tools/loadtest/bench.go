package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Baseline is one of our operations measured against the same work done by a
// bare baseline on the same machine in the same run.
type Baseline struct {
	Operation string  `json:"operation"`
	Ours      float64 `json:"ours_per_s"`
	OursP99ms float64 `json:"ours_p99_ms"`
	Baseline  string  `json:"baseline"`
	Base      float64 `json:"baseline_per_s"`
	Ratio     float64 `json:"ratio"`
	Target    float64 `json:"target_ratio,omitempty"`
	Met       *bool   `json:"met,omitempty"`
	// XactsPerOp: PostgreSQL transactions (pg_stat_database) per korrigo op and per pgbench transaction.
	XactsPerOp     float64 `json:"db_xacts_per_op,omitempty"`
	BaseXactsPerOp float64 `json:"baseline_db_xacts_per_op,omitempty"`
	OursErrors     int     `json:"ours_unexpected_errors"`
}

func baseline(op string, ours Summary, base string, baseRate, target float64) Baseline {
	b := Baseline{Operation: op, Ours: ours.Throughput, OursP99ms: ours.P99ms, Baseline: base, Base: baseRate,
		Target: target, OursErrors: ours.Unexpected}
	if baseRate > 0 {
		b.Ratio = ours.Throughput / baseRate
		if target > 0 {
			met := b.Ratio >= target
			b.Met = &met
		}
	}
	return b
}

// closedLoop runs `clients` workers calling op back to back for d and records
// each call (one op may be several requests: it is timed as one).
func closedLoop(ctx context.Context, name string, clients int, d time.Duration, op func(worker int) error) Summary {
	r := rec(name)
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && ctx.Err() == nil {
				t := time.Now()
				err := op(w)
				if ctx.Err() != nil {
					return // interrupted: not a server error
				}
				r.Add(time.Since(t), codeOf(err))
			}
		}()
	}
	wg.Wait()
	return r.Summary()
}

// rawServer is the baseline HTTP handler: it decodes a GraphQL-shaped JSON
// request and answers a small JSON document, nothing else.
func rawServer() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Query     string         `json:"query"`
			Variables map[string]any `json:"variables"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"saveDraft": map[string]any{"version": len(req.Variables)}}})
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/graphql", func() { _ = srv.Close() }, nil
}

var tpsRe = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)

// pgbench runs a custom script for d with `clients` clients and returns its tps
// (excluding connection time).
func pgbench(pgURL, script string, clients int, d time.Duration) (float64, error) {
	out, err := exec.Command("pgbench", "-n", "-c", strconv.Itoa(clients), "-j", "2",
		"-T", strconv.Itoa(int(d.Seconds())), "-f", script, pgURL).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench %s: %w: %s", filepath.Base(script), err, truncate(string(out), 500))
	}
	m := tpsRe.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench %s: no tps in output", filepath.Base(script))
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// pgXacts is the database's committed+rolled back transaction count (0 without PostgreSQL).
func pgXacts(pgURL string) float64 {
	if pgURL == "" {
		return 0
	}
	time.Sleep(700 * time.Millisecond) // let backends flush their statistics
	out, err := exec.Command("psql", pgURL, "-tAc",
		"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()").Output()
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	return v
}

// perOp measures fn's database transactions per op (ops from its Summary).
func perOp(pgURL string, fn func() (Summary, float64)) (Summary, float64, float64) {
	before := pgXacts(pgURL)
	s, baseTPS := fn()
	after := pgXacts(pgURL)
	if s.Ops == 0 || before == 0 {
		return s, baseTPS, 0
	}
	return s, baseTPS, (after - before - 1) / float64(s.Ops) // -1: the psql reading the counter
}

func psql(pgURL, file string) error {
	out, err := exec.Command("psql", pgURL, "-q", "-v", "ON_ERROR_STOP=1", "-f", file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("psql -f %s: %w: %s", file, err, truncate(string(out), 500))
	}
	return nil
}

// benchDesk measures the grading desk's hot paths (lock cycle, autosave, a
// trivial query) with `clients` closed-loop clients, the raw net/http handler
// with the same client code, and pgbench on tools/bench's SQL.
func benchDesk(ctx context.Context, cfg *Config, ds *Dataset, profile func(string, time.Duration)) ([]Summary, []Baseline, []string) {
	var notes []string
	d := time.Duration(cfg.BenchSeconds) * time.Second
	n := min(cfg.BenchClients, len(ds.CopiesA))
	if profile != nil {
		go profile("lockcycle", d)
	}
	lock, _, lockX := perOp(cfg.PgURL, func() (Summary, float64) {
		return closedLoop(ctx, "bench: lock cycle (acquireCopyLock + releaseCopyLock)", n, d, func(w int) error {
			var l struct{ AcquireCopyLock struct{ Token string } }
			if err := ds.Admin.Do(ctx, qAcquire, map[string]any{"c": ds.CopiesA[w]}, &l); err != nil {
				return err
			}
			return ds.Admin.Do(ctx, qRelease, map[string]any{"c": ds.CopiesA[w], "t": l.AcquireCopyLock.Token}, nil)
		}), 0
	})
	if profile != nil {
		go profile("autosave", d)
	}
	body := map[string]any{"text": text2KB(0)}
	save, _, saveX := perOp(cfg.PgURL, func() (Summary, float64) {
		return closedLoop(ctx, "bench: saveDraft (2 KB)", n, d, func(w int) error {
			return ds.Admin.Do(ctx, qSave, map[string]any{"c": ds.CopiesA[w], "cl": fmt.Sprintf("bench-%d", w), "p": body}, nil)
		}), 0
	})
	me := closedLoop(ctx, "bench: { me { id } }", n, d, func(int) error { return ds.Admin.Do(ctx, `{ me { id } }`, nil, nil) })
	var raw Summary
	if url, stop, err := rawServer(); err == nil {
		rc := &Client{HTTP: ds.Admin.HTTP, URL: url, Token: ds.Admin.Token}
		raw = closedLoop(ctx, "bench: raw net/http JSON handler (saveDraft-shaped request)", n, d, func(w int) error {
			return rc.Do(ctx, qSave, map[string]any{"c": ds.CopiesA[w], "cl": "raw", "p": body}, nil)
		})
		stop()
	} else {
		notes = append(notes, "raw server: "+err.Error())
	}
	sums := []Summary{lock, save, me, raw}
	var lockTPS, saveTPS float64
	if cfg.PgURL != "" {
		dir := cfg.BenchSQLDir
		if err := psql(cfg.PgURL, filepath.Join(dir, "setup.sql")); err != nil {
			notes = append(notes, err.Error())
		} else {
			var err error
			if lockTPS, err = pgbench(cfg.PgURL, filepath.Join(dir, "lock_cycle.sql"), n, d); err != nil {
				notes = append(notes, err.Error())
			}
			if saveTPS, err = pgbench(cfg.PgURL, filepath.Join(dir, "autosave.sql"), n, d); err != nil {
				notes = append(notes, err.Error())
			}
		}
	}
	lb := baseline("lock cycle (acquire+release)", lock, fmt.Sprintf("pgbench lock_cycle.sql, %d clients", n), lockTPS, 0.5)
	lb.XactsPerOp, lb.BaseXactsPerOp = lockX, 2
	sb := baseline("autosave (saveDraft 2 KB)", save, fmt.Sprintf("pgbench autosave.sql, %d clients", n), saveTPS, 0.5)
	sb.XactsPerOp, sb.BaseXactsPerOp = saveX, 1
	bl := []Baseline{
		lb, sb,
		baseline("saveDraft request", save, "raw net/http JSON handler, same client", raw.Throughput, 0),
		baseline("{ me { id } } request", me, "raw net/http JSON handler, same client", raw.Throughput, 0),
	}
	return sums, bl, notes
}

// benchCopies: the integrator's page query at `clients` clients vs pgbench
// running the equivalent SQL (a page of 100 copies of the exam, then their scores).
func benchCopies(ctx context.Context, cfg *Config, integ *Client, exam string) (Summary, Baseline, []string) {
	var notes []string
	d := time.Duration(cfg.BenchSeconds) * time.Second
	s, _, x := perOp(cfg.PgURL, func() (Summary, float64) {
		return closedLoop(ctx, fmt.Sprintf("bench: copies page (first: %d, scores, grade20)", cfg.PageSize), cfg.BenchClients, d, func(int) error {
			return integ.Do(ctx, qPage, map[string]any{"e": exam, "n": cfg.PageSize}, nil)
		}), 0
	})
	var tps float64
	if cfg.PgURL != "" {
		script := filepath.Join(cfg.OutDir, "select_copies_page.sql")
		sql := fmt.Sprintf(`-- A page of the exam's copies (keyset order on id, as ent paginates) and their scores.
SELECT c.id, c.anonymous_id, c.status, c.version FROM copies c WHERE c.exam_id = '%[1]s' ORDER BY c.id LIMIT %[2]d;
SELECT s.copy_id, s.question_id, s.points FROM question_scores s
  WHERE s.copy_id IN (SELECT id FROM copies WHERE exam_id = '%[1]s' ORDER BY id LIMIT %[2]d);
`, exam, cfg.PageSize+1)
		if err := os.WriteFile(script, []byte(sql), 0o644); err != nil {
			notes = append(notes, err.Error())
		} else if tps, err = pgbench(cfg.PgURL, script, cfg.BenchClients, d); err != nil {
			notes = append(notes, err.Error())
		}
	}
	b := baseline(fmt.Sprintf("copies page of %d with scores", cfg.PageSize), s, "pgbench select_copies_page.sql", tps, 0.3)
	b.XactsPerOp, b.BaseXactsPerOp = x, 2
	return s, b, notes
}
