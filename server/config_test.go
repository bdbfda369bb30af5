package server

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaults(t *testing.T) {
	c, err := LoadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.DatabaseURL != "sqlite://./data/korrigo.db" || c.DataDir != "./data" || c.Production() {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestProductionRefusesUnsafeConfig(t *testing.T) {
	safe := map[string]string{
		"KORRIGO_ENV":           "production",
		"KORRIGO_DATABASE_URL":  "postgres://korrigo@db/korrigo",
		"KORRIGO_METRICS_TOKEN": "0123456789abcdef0123",
	}
	if _, err := LoadConfig(env(safe)); err != nil {
		t.Fatalf("safe production config refused: %v", err)
	}
	cases := map[string]struct{ key, value, want string }{
		"no secret":         {"KORRIGO_METRICS_TOKEN", "", "KORRIGO_METRICS_TOKEN"},
		"wildcard origin":   {"KORRIGO_ALLOWED_ORIGINS", "https://*.school.example", "wildcard"},
		"sqlite replicas":   {"KORRIGO_DATABASE_URL", "sqlite://./data/k.db", "SQLite"},
		"bad env":           {"KORRIGO_ENV", "prod", "KORRIGO_ENV"},
		"bad database":      {"KORRIGO_DATABASE_URL", "mysql://x", "KORRIGO_DATABASE_URL"},
		"bad origin":        {"KORRIGO_ALLOWED_ORIGINS", "school.example", "not an origin"},
		"bad log level":     {"KORRIGO_LOG_LEVEL", "loud", "KORRIGO_LOG_LEVEL"},
		"bad replica count": {"KORRIGO_REPLICAS", "zero", "KORRIGO_REPLICAS"},
		"test hook":         {"KORRIGO_TEST_BLOCK_JOB", "FINALIZE_COPY", "KORRIGO_TEST_BLOCK_JOB"},
	}
	for name, tc := range cases {
		m := map[string]string{"KORRIGO_REPLICAS": "3"}
		for k, v := range safe {
			m[k] = v
		}
		m[tc.key] = tc.value
		_, err := LoadConfig(env(m))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, tc.want)
		}
	}
}

func TestConfigRefusesMalformedTunables(t *testing.T) {
	for key, value := range map[string]string{
		"KORRIGO_PDF_TIMEOUT":         "sixty",
		"KORRIGO_WS_INIT_TIMEOUT":     "-1s",
		"KORRIGO_PDF_MEMORY_LIMIT_MB": "-5",
		"KORRIGO_SERVE_WORKERS":       "two",
	} {
		if _, err := LoadConfig(env(map[string]string{key: value})); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s=%q: err = %v", key, value, err)
		}
	}
	c, err := LoadConfig(env(map[string]string{"KORRIGO_SERVE_WORKERS": "0", "KORRIGO_WS_INIT_TIMEOUT": "300ms"}))
	if err != nil || c.ServeWorkers != 0 || c.WSInitTimeout.String() != "300ms" {
		t.Fatalf("config = %+v, %v", c, err)
	}
}

// The origin entries the configuration accepts are exactly those the
// WebSocket check enforces: wildcards in development only, nothing malformed.
func TestAllowedOriginsValidation(t *testing.T) {
	for _, v := range []string{"*", "https://*.school.example", "http://localhost:5173,https://*.dev.example:8443"} {
		if _, err := LoadConfig(env(map[string]string{"KORRIGO_ALLOWED_ORIGINS": v})); err != nil {
			t.Errorf("development refused %q: %v", v, err)
		}
	}
	prod := map[string]string{"KORRIGO_ENV": "production", "KORRIGO_DATABASE_URL": "postgres://korrigo@db/korrigo",
		"KORRIGO_METRICS_TOKEN": "0123456789abcdef0123"}
	for _, v := range []string{"*", "https://*.school.example", "https://app.example, *"} {
		prod["KORRIGO_ALLOWED_ORIGINS"] = v
		if _, err := LoadConfig(env(prod)); err == nil || !strings.Contains(err.Error(), "wildcard") {
			t.Errorf("production accepted %q: %v", v, err)
		}
	}
	for _, v := range []string{"https://app.*.example", "https://school.example/app", "*.school.example", "ftp://x.example"} {
		if _, err := LoadConfig(env(map[string]string{"KORRIGO_ALLOWED_ORIGINS": v})); err == nil ||
			!strings.Contains(err.Error(), "not an origin") {
			t.Errorf("%q: err = %v", v, err)
		}
	}
}

// A malformed KORRIGO_WORKER_METRICS_ADDR fails at start-up, naming the
// variable; unset means no listener.
func TestWorkerMetricsAddrValidation(t *testing.T) {
	for _, bad := range []string{"9464", "localhost", ":http", ":99999", ":-1", "[::1:9464", "a:b:9464"} {
		_, err := LoadConfig(env(map[string]string{"KORRIGO_WORKER_METRICS_ADDR": bad}))
		if err == nil || !strings.Contains(err.Error(), "KORRIGO_WORKER_METRICS_ADDR") {
			t.Errorf("KORRIGO_WORKER_METRICS_ADDR=%q: err = %v", bad, err)
		}
	}
	for _, good := range []string{":9464", "0.0.0.0:9464", "127.0.0.1:0", "[::1]:9464", "worker-1:9464"} {
		c, err := LoadConfig(env(map[string]string{"KORRIGO_WORKER_METRICS_ADDR": good}))
		if err != nil || c.WorkerMetricsAddr != good {
			t.Errorf("KORRIGO_WORKER_METRICS_ADDR=%q: %q, %v", good, c.WorkerMetricsAddr, err)
		}
	}
	if c, err := LoadConfig(env(nil)); err != nil || c.WorkerMetricsAddr != "" {
		t.Fatalf("default: %q, %v", c.WorkerMetricsAddr, err)
	}
}

// KORRIGO_EXPORT_RETENTION: 7 days unless set; 0 keeps exports forever;
// anything else that is not a non-negative duration stops the start-up.
func TestConfigExportRetention(t *testing.T) {
	c, err := LoadConfig(env(nil))
	if err != nil || c.ExportRetention != 168*time.Hour {
		t.Fatalf("default retention = %v, %v; want 168h", c.ExportRetention, err)
	}
	for value, want := range map[string]time.Duration{"0": 0, "36h": 36 * time.Hour, "90m": 90 * time.Minute} {
		c, err := LoadConfig(env(map[string]string{"KORRIGO_EXPORT_RETENTION": value}))
		if err != nil || c.ExportRetention != want {
			t.Errorf("KORRIGO_EXPORT_RETENTION=%q: %v, %v; want %v", value, c.ExportRetention, err, want)
		}
	}
	for _, value := range []string{"7d", "-1h", "forever", "168"} {
		if _, err := LoadConfig(env(map[string]string{"KORRIGO_EXPORT_RETENTION": value})); err == nil ||
			!strings.Contains(err.Error(), "KORRIGO_EXPORT_RETENTION") {
			t.Errorf("KORRIGO_EXPORT_RETENTION=%q: err = %v", value, err)
		}
	}
}
