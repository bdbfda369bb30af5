package server_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/server"
)

func newApp(t *testing.T, dataDir string) *server.App {
	t.Helper()
	cfg, err := server.LoadConfig(func(k string) string {
		if k == "KORRIGO_DATA_DIR" {
			return dataDir
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	app, err := server.NewAppWithDB(cfg, zaptest.NewLogger(t), dbtest.Open(t, "sqlite3"))
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func TestReadyz(t *testing.T) {
	dir := t.TempDir()
	app := newApp(t, dir)
	get := func() (int, map[string]any) {
		rec := httptest.NewRecorder()
		app.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}
	if code, body := get(); code != http.StatusOK {
		t.Fatalf("ready = %d %v", code, body)
	}
	// The data dir becomes unusable (replaced by a file): 503 naming the check.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a dir"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := get()
	checks, _ := body["checks"].(map[string]any)
	if code != http.StatusServiceUnavailable || checks["data_dir"] != "fail" || checks["database"] != "ok" {
		t.Fatalf("unwritable data dir: %d %v", code, body)
	}
	// The database goes away.
	if err := app.DB.SQL.Close(); err != nil {
		t.Fatal(err)
	}
	code, body = get()
	checks, _ = body["checks"].(map[string]any)
	if code != http.StatusServiceUnavailable || checks["database"] != "fail" {
		t.Fatalf("closed database: %d %v", code, body)
	}
}

func TestGracefulShutdown(t *testing.T) {
	app := newApp(t, filepath.Join(t.TempDir(), "data"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	app.StartBackground(ctx)
	go func() { done <- app.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String() + "/healthz"
	var resp *http.Response
	for range 100 {
		if resp, err = http.Get(url); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v after shutdown", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get(url); err == nil {
		t.Fatal("still serving after shutdown")
	}
}
