// Package db opens the database named by KORRIGO_DATABASE_URL (SQLite through
// modernc, the embedded default, or PostgreSQL through lib/pq) and wraps it in an
// ent client.
package db

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	_ "github.com/lib/pq"  // PostgreSQL driver "postgres"
	_ "modernc.org/sqlite" // SQLite driver "sqlite"

	"github.com/korrigo/korrigo/ent"
	_ "github.com/korrigo/korrigo/ent/runtime" // schema hooks, policies and defaults
)

// DB is an open database: the ent client and the raw pool beneath it.
type DB struct {
	Client  *ent.Client
	SQL     *sql.DB
	Dialect string // dialect.SQLite or dialect.Postgres
}

// Close closes the pool.
func (d *DB) Close() error { return d.Client.Close() }

// Ping checks the database answers (used by /readyz).
func (d *DB) Ping(ctx context.Context) error { return d.SQL.PingContext(ctx) }

// Open connects to rawURL: "sqlite://path/to/file.db" or "postgres://…".
func Open(ctx context.Context, rawURL string) (*DB, error) {
	var (
		driverName, dsn, dia string
		maxConns             int
	)
	switch {
	case strings.HasPrefix(rawURL, "sqlite://"):
		path := strings.TrimPrefix(rawURL, "sqlite://")
		if path == "" {
			return nil, fmt.Errorf("open database: empty SQLite path in %q", rawURL)
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("open database: create %s: %w", dir, err)
			}
		}
		driverName, dsn, dia = "sqlite", SQLiteDSN(path), dialect.SQLite
		// A small pool, not one connection: code reading outside its own transaction
		// must not wait for a writer to finish. Writers serialize on BEGIN IMMEDIATE.
		maxConns = 4
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		u, err := PostgresDSN(rawURL)
		if err != nil {
			return nil, err
		}
		driverName, dsn, dia = "postgres", u, dialect.Postgres
		maxConns = 20
	default:
		return nil, fmt.Errorf("open database: unsupported URL scheme in %q (want sqlite:// or postgres://)", redact(rawURL))
	}
	pool, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	pool.SetMaxOpenConns(maxConns)
	pool.SetMaxIdleConns(maxConns)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.PingContext(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database %s: %w", redact(rawURL), err)
	}
	return &DB{Client: ent.NewClient(ent.Driver(NewDriver(dia, pool))), SQL: pool, Dialect: dia}, nil
}

// SQLiteDSN is the modernc DSN for a database file: WAL, foreign keys, a busy
// timeout, and BEGIN IMMEDIATE so a transaction takes the write lock up front
// instead of failing with SQLITE_BUSY when it upgrades from read to write.
func SQLiteDSN(path string) string {
	// A URI filename: "?", "#" and "%" in the path would start the query or fragment.
	path = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)" +
		"&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// PostgresDSN adds the session limits of DESIGN.md §12 to a PostgreSQL URL
// (lib/pq sends unknown parameters as run-time settings) and a 10 s connect
// timeout (lib/pq's connect_timeout, seconds; it has none by default). Values
// already in the URL win.
func PostgresDSN(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("open database: parse URL: %w", err)
	}
	q := u.Query()
	for k, v := range map[string]string{"sslmode": "disable", "lock_timeout": "5000", "statement_timeout": "30000",
		"connect_timeout": "10"} {
		if q.Get(k) == "" {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// redact hides a password in a URL for logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.Redacted()
}
