// Command loadtest drives a Korrigo server over GraphQL HTTP and WebSocket with
// a fixed dataset it creates itself, runs the load scenarios of issue 8, checks
// their invariants, measures baselines (pgbench, a raw net/http handler) in
// the same run, and writes a JSON and a markdown report.
//
//	go run ./tools/loadtest -server-bin bin/korrigo -database-url postgres://… -pg-url postgres://…
//
// With -server-bin it starts the server itself (loopback, development mode,
// rate limits raised, pprof on -pprof-addr); without it, it drives -url.
// `make load` (tools/loadtest/run.sh) is the reference invocation; see
// docs/PERFORMANCE.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Config is the command line.
type Config struct {
	Label            string
	URL              string
	ServerBin        string
	Addr             string
	PprofAddr        string
	DatabaseURL      string
	RedisURL         string
	PgURL            string
	AdminEmail       string
	AdminPassword    string
	TestData         string
	BenchSQLDir      string
	OutDir           string
	Teachers         int
	CopiesA          int
	CopiesPerTeacher int
	Saves            int
	FinalizeDistinct int
	Scans            int
	SplitPages       int
	Subscribers      int
	IntegratorCopies int
	PageSize         int
	BenchSeconds     int
	BenchClients     int
	ProfileSeconds   int
	Only             string
	SeedDirect       bool
}

func (c *Config) pdf(name string) string { return filepath.Join(c.TestData, name) }
func (c *Config) wsURL() string {
	return "ws" + strings.TrimPrefix(c.URL, "http")
}
func (c *Config) run(s string) bool {
	return c.Only == "" || strings.Contains(","+c.Only+",", ","+s+",")
}

func main() {
	cfg := &Config{}
	flag.StringVar(&cfg.Label, "label", "postgres", "name of this run in the report")
	flag.StringVar(&cfg.URL, "url", "", "GraphQL endpoint of a running server (default: the one -server-bin starts)")
	flag.StringVar(&cfg.ServerBin, "server-bin", "", "korrigo binary to start (loopback, development mode)")
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:18080", "listen address of the started server")
	flag.StringVar(&cfg.PprofAddr, "pprof-addr", "127.0.0.1:16060", "KORRIGO_PPROF_ADDR of the started server (empty: no profiles)")
	flag.StringVar(&cfg.DatabaseURL, "database-url", "", "KORRIGO_DATABASE_URL of the server (needed by -seed-direct)")
	flag.StringVar(&cfg.RedisURL, "redis-url", "", "KORRIGO_REDIS_URL of the started server (empty: in-memory broker)")
	flag.StringVar(&cfg.PgURL, "pg-url", "", "PostgreSQL URL of the same database for the pgbench baselines (empty: none)")
	flag.StringVar(&cfg.AdminEmail, "admin-email", "admin@load.korrigo.test", "first admin (KORRIGO_ADMIN_EMAIL)")
	flag.StringVar(&cfg.AdminPassword, "admin-password", "violet-tramway-harbour-2026", "first admin's password")
	flag.StringVar(&cfg.TestData, "testdata", "testdata", "directory of the test PDFs")
	flag.StringVar(&cfg.BenchSQLDir, "bench-sql", "tools/bench", "directory of pgbench's setup.sql, lock_cycle.sql, autosave.sql")
	flag.StringVar(&cfg.OutDir, "out", "loadtest-out", "directory for the reports, profiles and server log")
	flag.IntVar(&cfg.Teachers, "teachers", 30, "correctors")
	flag.IntVar(&cfg.CopiesA, "copies", 100, "copies of the grading exam (dispatched over the teachers; autosave uses them all)")
	flag.IntVar(&cfg.CopiesPerTeacher, "copies-per-teacher", 3, "copies each teacher grades in scenario 4")
	flag.IntVar(&cfg.Saves, "saves", 10, "saveDraft calls per tab in scenario 1")
	flag.IntVar(&cfg.FinalizeDistinct, "finalize", 20, "concurrent finalizations (distinct copies, and of one copy)")
	flag.IntVar(&cfg.Scans, "scans", 10, "concurrent scan uploads")
	flag.IntVar(&cfg.SplitPages, "split-pages", 400, "pages of the big A4 scan (multiple of 8)")
	flag.IntVar(&cfg.Subscribers, "subscribers", 5000, "WebSocket subscribers in scenario 4")
	flag.IntVar(&cfg.IntegratorCopies, "integrator-copies", 10000, "copies the integrator pages through (inserted with -seed-direct)")
	flag.IntVar(&cfg.PageSize, "page-size", 100, "integrator page size (first)")
	flag.IntVar(&cfg.BenchSeconds, "bench-seconds", 6, "duration of each closed-loop benchmark and pgbench run")
	flag.IntVar(&cfg.BenchClients, "bench-clients", 16, "clients of the closed-loop benchmarks (pgbench -c)")
	flag.IntVar(&cfg.ProfileSeconds, "profile-seconds", 15, "CPU profile length during scenario 4")
	flag.BoolVar(&cfg.SeedDirect, "seed-direct", true, "scenario 5: insert the integrator's GRADED copies straight into -database-url through ent (false: skip scenario 5; through the API it would take one import and one finalization per copy)")
	flag.StringVar(&cfg.Only, "only", "", "comma-separated subset: bench,1,2,3,4,5")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// Report is the JSON output.
type Report struct {
	Label    string     `json:"label"`
	Started  time.Time  `json:"started"`
	Seconds  float64    `json:"seconds"`
	Machine  Machine    `json:"machine"`
	Config   *Config    `json:"config"`
	Seed     []Summary  `json:"seed"`
	Bench    []Summary  `json:"bench"`
	Baseline []Baseline `json:"baselines"`
	Results  []Result   `json:"scenarios"`
	Notes    []string   `json:"notes,omitempty"`
	Profiles []string   `json:"cpu_profiles,omitempty"`
}

func run(cfg *Config) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return err
	}
	rep := &Report{Label: cfg.Label, Started: time.Now().UTC(), Config: cfg, Machine: describeMachine(cfg)}
	if cfg.ServerBin != "" {
		srv, err := startServer(ctx, cfg)
		if err != nil {
			return err
		}
		defer srv.stop()
	} else if cfg.URL == "" {
		return fmt.Errorf("give -server-bin or -url")
	}
	base := &Client{HTTP: newHTTPClient(), URL: cfg.URL}
	profile := func(name string, d time.Duration) {
		if cfg.PprofAddr == "" || cfg.ServerBin == "" {
			return
		}
		path := filepath.Join(cfg.OutDir, fmt.Sprintf("cpu-%s-%s.pprof", cfg.Label, name))
		if err := fetchProfile(cfg.PprofAddr, d, path); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		rep.Profiles = append(rep.Profiles, path)
	}
	step := func(s string) { fmt.Fprintf(os.Stderr, "[%s %s] %s\n", cfg.Label, time.Now().Format("15:04:05"), s) }

	step("seeding through the API")
	ds, err := seed(ctx, cfg, base)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("seed through the API (%d teachers; %d+%d copies from two uploadScan of the A4 copy repeated, markCopyReady, dispatch): %.1f s",
		len(ds.Teachers), len(ds.CopiesA), len(ds.CopiesB), ds.SeedSeconds))
	if cfg.run("bench") {
		step("desk benchmarks and baselines")
		sums, bl, notes := benchDesk(ctx, cfg, ds, profile)
		rep.Bench, rep.Baseline, rep.Notes = append(rep.Bench, sums...), append(rep.Baseline, bl...), append(rep.Notes, notes...)
	}
	if cfg.run("1") {
		step("scenario 1: autosaves")
		rep.Results = append(rep.Results, scenarioAutosave(ctx, ds, cfg.Saves))
	}
	if cfg.run("2") {
		step("scenario 2: finalizations")
		rep.Results = append(rep.Results, scenarioFinalize(ctx, ds, cfg.FinalizeDistinct))
	}
	if cfg.run("3") {
		step("scenario 3: scan uploads")
		rep.Results = append(rep.Results, scenarioScans(ctx, cfg, ds))
	}
	// Scenario 4 last: the heaviest and the most sensitive to a busy machine; if
	// the time bound interrupts it, the other results are complete.
	if cfg.run("5") && !cfg.SeedDirect {
		rep.Notes = append(rep.Notes, "scenario 5 skipped: it needs -seed-direct")
	}
	if cfg.run("5") && cfg.SeedDirect {
		step(fmt.Sprintf("scenario 5: integrator over %d copies", cfg.IntegratorCopies))
		res, exam, integ := scenarioIntegrator(ctx, cfg, ds)
		rep.Results = append(rep.Results, res)
		if integ != nil && cfg.run("bench") {
			step("copies page benchmark and baseline")
			s, bl, notes := benchCopies(ctx, cfg, integ, exam)
			rep.Bench, rep.Baseline, rep.Notes = append(rep.Bench, s), append(rep.Baseline, bl), append(rep.Notes, notes...)
		}
	}
	if cfg.run("4") {
		step(fmt.Sprintf("scenario 4: grading with %d subscribers", cfg.Subscribers))
		rep.Results = append(rep.Results, scenarioGrading(ctx, cfg, ds, profile))
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	step(fmt.Sprintf("done in %.0f s", rep.Seconds))
	return writeReport(cfg, rep)
}

type server struct {
	cmd  *exec.Cmd
	done chan error
}

func startServer(ctx context.Context, cfg *Config) (*server, error) {
	if cfg.URL == "" {
		cfg.URL = "http://" + cfg.Addr + "/graphql"
	}
	logf, err := os.Create(filepath.Join(cfg.OutDir, "server-"+cfg.Label+".log"))
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(cfg.OutDir, "data-"+cfg.Label)
	_ = os.RemoveAll(dataDir)
	cmd := exec.Command(cfg.ServerBin, "serve")
	cmd.Env = append(os.Environ(),
		"KORRIGO_ADDR="+cfg.Addr,
		"KORRIGO_DATABASE_URL="+cfg.DatabaseURL,
		"KORRIGO_REDIS_URL="+cfg.RedisURL,
		"KORRIGO_DATA_DIR="+dataDir,
		"KORRIGO_ENV=development",
		"KORRIGO_LOG_LEVEL=warn",
		"KORRIGO_ADMIN_EMAIL="+cfg.AdminEmail,
		"KORRIGO_ADMIN_PASSWORD="+cfg.AdminPassword,
		"KORRIGO_PPROF_ADDR="+cfg.PprofAddr,
		// The load comes from one IP and a few users: lift the per-user and per-IP
		// limits, which would otherwise be what is measured.
		"KORRIGO_RATE_ANONYMOUS=1000000-M",
		"KORRIGO_RATE_OPERATIONS=100000000-M",
		"KORRIGO_RATE_MUTATIONS=100000000-M",
		"KORRIGO_RATE_WEBSOCKET=100000000-M",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a time bound signalling ours (timeout(1) signals its
	// whole group) must not stop the server before the invariants are read back.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM} // and no orphan if we are killed
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.ServerBin, err)
	}
	s := &server{cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); logf.Close() }()
	ready := strings.TrimSuffix(cfg.URL, "/graphql") + "/readyz"
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("server exited during start (%v): see %s", err, logf.Name())
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("server not ready after 90 s: see %s", logf.Name())
		}
	}
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func fetchProfile(addr string, d time.Duration, path string) error {
	c := &http.Client{Timeout: d + 30*time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: HTTP %d", resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// Machine describes where the numbers come from.
type Machine struct {
	NProc    int    `json:"nproc"`
	CPU      string `json:"cpu"`
	MemTotal string `json:"mem_total"`
	Go       string `json:"go"`
	Postgres string `json:"postgres,omitempty"`
	Redis    string `json:"redis,omitempty"`
	Kernel   string `json:"kernel"`
	LoadAvg  string `json:"loadavg_at_start"`
}

func describeMachine(cfg *Config) Machine {
	m := Machine{NProc: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemTotal = strings.Join(strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1:], " ")
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(b))
	}
	if b, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if cfg.PgURL != "" {
		if b, err := exec.Command("psql", cfg.PgURL, "-tAc", "SHOW server_version").Output(); err == nil {
			m.Postgres = strings.TrimSpace(string(b))
		}
	}
	if cfg.RedisURL != "" {
		if b, err := exec.Command("redis-cli", "-u", cfg.RedisURL, "INFO", "server").Output(); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
					m.Redis = v
				}
			}
		}
	}
	return m
}

func writeReport(cfg *Config, rep *Report) error {
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	jp := filepath.Join(cfg.OutDir, "report-"+cfg.Label+".json")
	if err := os.WriteFile(jp, raw, 0o644); err != nil {
		return err
	}
	md := Markdown(rep)
	mp := filepath.Join(cfg.OutDir, "report-"+cfg.Label+".md")
	if err := os.WriteFile(mp, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	fmt.Fprintf(os.Stderr, "wrote %s and %s\n", jp, mp)
	if !rep.AllChecksOK() {
		return fmt.Errorf("some invariants failed or unexpected errors occurred (see %s)", mp)
	}
	return nil
}
