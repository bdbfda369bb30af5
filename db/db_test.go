package db

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// A path with URI metacharacters still opens the named file with every setting.
func TestSQLitePathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "odd#dir?x=1")
	path := filepath.Join(dir, "k%1.db")
	d, err := Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var fk int
	var mode string
	if err := d.SQL.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v", fk, err)
	}
	if err := d.SQL.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %s: %v", path, err)
	}
}

// PostgreSQL sessions get lock_timeout 5 s, statement_timeout 30 s and a 10 s
// connect timeout unless the URL says otherwise.
func TestPostgresSessionLimits(t *testing.T) {
	dsn, err := PostgresDSN("postgres://u@db.example:5432/k?statement_timeout=60000")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dsn)
	q := u.Query()
	if q.Get("connect_timeout") != "10" || q.Get("lock_timeout") != "5000" || q.Get("statement_timeout") != "60000" {
		t.Fatalf("PostgresDSN = %s", dsn)
	}
	pg := os.Getenv("KORRIGO_TEST_POSTGRES_URL")
	if pg == "" {
		t.Skip("KORRIGO_TEST_POSTGRES_URL not set")
	}
	d, err := Open(context.Background(), pg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for setting, want := range map[string]string{"lock_timeout": "5s", "statement_timeout": "30s"} {
		var got string
		if err := d.SQL.QueryRow("SHOW " + setting).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %s", setting, got, err, want)
		}
	}
}
