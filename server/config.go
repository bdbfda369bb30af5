package server

import (
	"github.com/getsentry/sentry-go"

	"github.com/korrigo/korrigo/jobs"
	"github.com/korrigo/korrigo/server/wsgorilla"

	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is read from KORRIGO_* environment variables (DESIGN.md §12).
type Config struct {
	Addr           string
	DatabaseURL    string
	AdminEmail     string
	AdminPassword  string
	RedisURL       string
	DataDir        string
	Env            string // development | production
	AllowedOrigins []string
	SentryDSN      string
	LogLevel       string
	// MetricsToken protects /metrics; required in production.
	MetricsToken string
	// WorkerMetricsAddr is where `korrigo worker` serves /metrics and /healthz
	// (KORRIGO_WORKER_METRICS_ADDR, host:port; empty: no listener).
	WorkerMetricsAddr string
	// Replicas is how many serve processes share the database (for the safety check).
	Replicas        int
	ShutdownTimeout time.Duration
	// FileURLSecret signs file URLs (KORRIGO_FILE_URL_SECRET); random per process when empty.
	FileURLSecret string
	// PDFTimeout and PDFMemoryLimitMB bound each PDF subprocess (0: the runner's defaults).
	PDFTimeout       time.Duration
	PDFMemoryLimitMB int
	// ServeWorkers run jobs inside `serve` (KORRIGO_SERVE_WORKERS; 0: only `korrigo worker`
	// processes run jobs); Workers is the pool of `korrigo worker` (KORRIGO_WORKERS).
	ServeWorkers, Workers int
	// WSInitTimeout and WSPingInterval: WebSocket connection_init deadline and ping period.
	WSInitTimeout, WSPingInterval time.Duration
	// WSAuthInterval: how often every open socket's credential is re-checked
	// (KORRIGO_WS_AUTH_INTERVAL), the safety net behind the hints that close
	// a revoked credential's sockets at once (socketAuth).
	WSAuthInterval time.Duration
	// ExportRetention: an export's file is deleted this long after its job
	// finished (KORRIGO_EXPORT_RETENTION, default 168h; 0 keeps exports forever).
	ExportRetention time.Duration
	// RateLimits are the per-IP, per-user and per-operation rates (ratelimit.go).
	RateLimits RateLimits
	// TrustedProxies may set X-Forwarded-For (KORRIGO_TRUSTED_PROXIES).
	TrustedProxies []netip.Prefix
	// HTTP server timeouts (timeouts.go). Not environment variables: the
	// defaults (Default*Timeout) are documented in README; zero means the
	// default. Tests shorten them.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// TransferTimeout replaces the read and write deadlines of uploads and file
	// downloads, which may stream for minutes on a school's uplink.
	TransferTimeout time.Duration
	// SlowRequest: requests (and WebSocket operations) slower than this are
	// logged as warnings (0: DefaultSlowRequest, 1 s).
	SlowRequest time.Duration
	// SentryTransport replaces Sentry's HTTP transport (tests capture events).
	SentryTransport sentry.Transport
	// TestBlockJob (KORRIGO_TEST_BLOCK_JOB, refused in production) is a test
	// hook for crash tests of real processes: jobs of that kind (e.g.
	// FINALIZE_COPY) stop after storing their files, write
	// <data dir>/test-blocked-<kind>, and wait until the process dies.
	TestBlockJob string
}

// Production reports whether the server runs with production settings.
func (c Config) Production() bool { return c.Env == "production" }

// LoadConfig reads the environment and validates it.
func LoadConfig(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	get := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		Addr:          get("KORRIGO_ADDR", ":8080"),
		DatabaseURL:   get("KORRIGO_DATABASE_URL", "sqlite://./data/korrigo.db"),
		AdminEmail:    get("KORRIGO_ADMIN_EMAIL", ""),
		AdminPassword: getenv("KORRIGO_ADMIN_PASSWORD"),
		RedisURL:      get("KORRIGO_REDIS_URL", ""),
		DataDir:       get("KORRIGO_DATA_DIR", "./data"),
		Env:           get("KORRIGO_ENV", "development"),
		SentryDSN:     get("KORRIGO_SENTRY_DSN", ""),
		LogLevel:      get("KORRIGO_LOG_LEVEL", "info"),
		MetricsToken:  get("KORRIGO_METRICS_TOKEN", ""),

		WorkerMetricsAddr: get("KORRIGO_WORKER_METRICS_ADDR", ""),
	}
	for _, o := range strings.Split(get("KORRIGO_ALLOWED_ORIGINS", ""), ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, strings.TrimRight(o, "/"))
		}
	}
	var err error
	if c.Replicas, err = strconv.Atoi(get("KORRIGO_REPLICAS", "1")); err != nil || c.Replicas < 1 {
		return c, fmt.Errorf("config: KORRIGO_REPLICAS must be a positive integer")
	}
	if c.ShutdownTimeout, err = time.ParseDuration(get("KORRIGO_SHUTDOWN_TIMEOUT", "30s")); err != nil {
		return c, fmt.Errorf("config: KORRIGO_SHUTDOWN_TIMEOUT: %w", err)
	}
	c.FileURLSecret = getenv("KORRIGO_FILE_URL_SECRET")
	c.TestBlockJob = get("KORRIGO_TEST_BLOCK_JOB", "")
	durations := []struct {
		key string
		def time.Duration
		dst *time.Duration
	}{
		{"KORRIGO_PDF_TIMEOUT", 0, &c.PDFTimeout},
		{"KORRIGO_WS_INIT_TIMEOUT", DefaultWSInitTimeout, &c.WSInitTimeout},
		{"KORRIGO_WS_PING_INTERVAL", DefaultWSPingInterval, &c.WSPingInterval},
		{"KORRIGO_WS_AUTH_INTERVAL", DefaultWSAuthInterval, &c.WSAuthInterval},
	}
	for _, d := range durations {
		if *d.dst, err = durationVar(get, d.key, d.def); err != nil {
			return c, err
		}
	}
	if c.ExportRetention, err = retentionVar(get, "KORRIGO_EXPORT_RETENTION", jobs.DefaultExportRetention); err != nil {
		return c, err
	}
	counts := []struct {
		key string
		def int
		dst *int
	}{
		{"KORRIGO_PDF_MEMORY_LIMIT_MB", 0, &c.PDFMemoryLimitMB},
		{"KORRIGO_SERVE_WORKERS", jobs.DefaultWorkers, &c.ServeWorkers},
		{"KORRIGO_WORKERS", jobs.DefaultWorkers, &c.Workers},
	}
	for _, n := range counts {
		if *n.dst, err = countVar(get, n.key, n.def); err != nil {
			return c, err
		}
	}
	if c.RateLimits, c.TrustedProxies, err = loadRateLimits(get); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, c.Validate()
}

// Validate refuses inconsistent settings, and unsafe ones in production.
func (c Config) Validate() error {
	var errs []error
	switch c.Env {
	case "development", "production":
	default:
		errs = append(errs, fmt.Errorf("KORRIGO_ENV must be development or production, got %q", c.Env))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("KORRIGO_LOG_LEVEL must be debug, info, warn or error, got %q", c.LogLevel))
	}
	if !strings.HasPrefix(c.DatabaseURL, "sqlite://") && !strings.HasPrefix(c.DatabaseURL, "postgres://") &&
		!strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("KORRIGO_DATABASE_URL must start with sqlite:// or postgres://"))
	}
	// The WebSocket origin check (wsgorilla.AllowOrigins) parses the entries
	// the same way: what is accepted here is what it enforces.
	for _, o := range c.AllowedOrigins {
		wildcard, err := wsgorilla.ParseOrigin(o)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("KORRIGO_ALLOWED_ORIGINS: %w; want scheme://host[:port]", err))
		case wildcard && c.Production():
			errs = append(errs, fmt.Errorf("KORRIGO_ALLOWED_ORIGINS: wildcard origin %q is refused in production", o))
		}
	}
	if c.WorkerMetricsAddr != "" && !validListenAddr(c.WorkerMetricsAddr) {
		errs = append(errs, fmt.Errorf("KORRIGO_WORKER_METRICS_ADDR must be host:port such as :9464 or 127.0.0.1:9464, got %q",
			c.WorkerMetricsAddr))
	}
	if c.Production() {
		if c.TestBlockJob != "" {
			errs = append(errs, errors.New("KORRIGO_TEST_BLOCK_JOB is a test hook, refused in production"))
		}
		if c.MetricsToken == "" || len(c.MetricsToken) < 16 {
			errs = append(errs, errors.New("KORRIGO_METRICS_TOKEN (16+ characters) is required in production"))
		}
		if strings.HasPrefix(c.DatabaseURL, "sqlite://") && c.Replicas > 1 {
			errs = append(errs, errors.New("SQLite cannot be shared by several replicas: use PostgreSQL"))
		}
		if c.AdminPassword != "" && len(c.AdminPassword) < 12 {
			errs = append(errs, errors.New("KORRIGO_ADMIN_PASSWORD is too short for production"))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// validListenAddr accepts what net.Listen("tcp", addr) takes, with a numeric
// port, so that a typo fails at start-up with the variable's name rather than
// as a listen error.
func validListenAddr(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	_, err = strconv.ParseUint(port, 10, 16)
	return err == nil
}

// durationVar parses a positive duration setting (absent: def).
func durationVar(get func(k, def string) string, key string, def time.Duration) (time.Duration, error) {
	v := get(key, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("config: %s must be a positive duration such as 30s, got %q", key, v)
	}
	return d, nil
}

// retentionVar parses a non-negative duration setting where 0 means forever
// (absent: def).
func retentionVar(get func(k, def string) string, key string, def time.Duration) (time.Duration, error) {
	v := get(key, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("config: %s must be a duration such as 168h, or 0 to keep forever, got %q", key, v)
	}
	return d, nil
}

// countVar parses a non-negative integer setting (absent: def).
func countVar(get func(k, def string) string, key string, def int) (int, error) {
	v := get(key, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("config: %s must be a non-negative integer, got %q", key, v)
	}
	return n, nil
}
