// Package dbtest gives tests a fresh, migrated database: SQLite always, and
// PostgreSQL when KORRIGO_TEST_POSTGRES_URL is set (CI sets it), so every rule is
// proven on both.
package dbtest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/korrigo/korrigo/db"
)

// PostgresURL returns the server URL for tests, or "" when PostgreSQL tests are off.
func PostgresURL() string { return os.Getenv("KORRIGO_TEST_POSTGRES_URL") }

// Each runs fn as a subtest once per available database ("sqlite", "postgres").
func Each(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	for _, dia := range Dialects() {
		t.Run(dia, func(t *testing.T) { fn(t, Open(t, dia)) })
	}
}

// Dialects lists the databases tests run on.
func Dialects() []string {
	if PostgresURL() != "" {
		return []string{dialect.SQLite, dialect.Postgres}
	}
	return []string{dialect.SQLite}
}

// Open returns a fresh migrated database of the dialect, removed when t ends.
func Open(t testing.TB, dia string) *db.DB {
	t.Helper()
	d, _ := OpenURL(t, dia)
	return d
}

// OpenURL is Open, with the database's KORRIGO_DATABASE_URL: for a second
// app or process on the same database.
func OpenURL(t testing.TB, dia string) (*db.DB, string) {
	t.Helper()
	ctx := context.Background()
	var rawURL string
	switch dia {
	case dialect.SQLite:
		rawURL = "sqlite://" + filepath.Join(t.TempDir(), "korrigo.db")
	case dialect.Postgres:
		rawURL = createPostgres(t)
	default:
		t.Fatalf("dbtest: unknown dialect %q", dia)
	}
	d, err := db.Open(ctx, rawURL)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(ctx); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return d, rawURL
}

// createPostgres makes a throw-away database on the test server.
func createPostgres(t testing.TB) string {
	t.Helper()
	server := PostgresURL()
	if server == "" {
		t.Skip("KORRIGO_TEST_POSTGRES_URL is not set")
	}
	admin, err := sql.Open("postgres", server)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	name := fmt.Sprintf("korrigo_test_%d", rand.Uint64()>>1)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("dbtest: create database: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("dbtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
