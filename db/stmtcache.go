package db

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/lib/pq"
)

// Prepared statements on PostgreSQL.
//
// lib/pq runs a statement with arguments in two round trips: Parse+Describe,
// then Bind+Execute, each ended by a Sync. Outside a transaction that is also
// two server transactions, and every time the statement is parsed and planned
// again. A prepared statement runs in one round trip. The grading desk's
// requests are a handful of short statements each, so the round trips are most
// of their cost (issue 8: a lock cycle was 27 round trips for pgbench's 2).
//
// The driver below prepares every statement with arguments once per pooled
// connection and reuses it, in and out of transactions (database/sql keeps
// one prepared copy per connection and Tx.StmtContext picks the connection's).
// ent's statements are a bounded set of texts (the schema's queries, and IN
// lists of varying length); maxPrepared bounds them anyway, and a statement
// beyond it runs unprepared, as before.
//
// Statements name their columns (ent never selects *), so a migration that adds
// columns does not invalidate the prepared ones of a running replica; one that
// changes a selected column's type does, and PostgreSQL then refuses the
// prepared statement ("cached plan must not change result type"): that
// statement is dropped from the cache and prepared again on its next use.
const maxPrepared = 512

// maxPreparedArgs leaves long IN lists (eager loading of a page, bulk
// operations) unprepared: each length is its own statement, rarely repeated.
const maxPreparedArgs = 32

// prepareTimeout bounds a background prepare (see txStmt).
const prepareTimeout = 10 * time.Second

// NewDriver is the ent driver over pool: on PostgreSQL it prepares statements
// (see above), on SQLite it is ent's plain driver.
func NewDriver(dia string, pool *sql.DB) dialect.Driver {
	drv := entsql.OpenDB(dia, pool)
	if dia != dialect.Postgres {
		return drv
	}
	c := &stmtCache{db: pool, stmts: map[string]*sql.Stmt{}}
	return &preparingDriver{Driver: drv, c: c, conn: entsql.Conn{ExecQuerier: c}}
}

// preparingDriver is ent's SQL driver with its statements sent through c.
type preparingDriver struct {
	*entsql.Driver // Dialect, Close, DB
	c              *stmtCache
	conn           entsql.Conn
}

func (d *preparingDriver) Exec(ctx context.Context, query string, args, v any) error {
	return d.conn.Exec(ctx, query, args, v)
}

func (d *preparingDriver) Query(ctx context.Context, query string, args, v any) error {
	return d.conn.Query(ctx, query, args, v)
}

// ExecContext and QueryContext serve the raw statements of ent's client.
func (d *preparingDriver) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.c.ExecContext(ctx, query, args...)
}

func (d *preparingDriver) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.c.QueryContext(ctx, query, args...)
}

func (d *preparingDriver) Tx(ctx context.Context) (dialect.Tx, error) { return d.BeginTx(ctx, nil) }

func (d *preparingDriver) BeginTx(ctx context.Context, opts *sql.TxOptions) (dialect.Tx, error) {
	tx, err := d.c.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &entsql.Tx{Conn: entsql.Conn{ExecQuerier: &stmtCacheTx{tx: tx, c: d.c}}, Tx: tx}, nil
}

// stmtCache holds one *sql.Stmt per statement text.
type stmtCache struct {
	db       *sql.DB
	mu       sync.RWMutex
	stmts    map[string]*sql.Stmt
	inflight map[string]bool // being prepared for a transaction (see lookup)
}

// cacheable: statements without arguments already take one round trip (lib/pq's
// simple protocol); long argument lists are rarely repeated.
func cacheable(nargs int) bool { return nargs > 0 && nargs <= maxPreparedArgs }

// lookup is the prepared statement for query, nil when there is none (yet).
func (c *stmtCache) lookup(query string) (s *sql.Stmt, full bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.stmts[query], len(c.stmts) >= maxPrepared
}

// stmt is the prepared statement for query, prepared now if needed; nil when it
// is to run unprepared: a full cache, or a failed prepare (the unprepared run
// then reports the error).
func (c *stmtCache) stmt(ctx context.Context, query string) *sql.Stmt {
	s, full := c.lookup(query)
	if s != nil || full {
		return s
	}
	s, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.stmts[query]; ok { // prepared concurrently
		_ = s.Close()
		return prev
	}
	if len(c.stmts) >= maxPrepared {
		_ = s.Close()
		return nil
	}
	c.stmts[query] = s
	return s
}

// txStmt is the prepared statement for a statement of a transaction, nil on a
// miss. A miss runs unprepared and prepares the statement in the background:
// DB.PrepareContext needs a connection of its own, and a transaction waiting
// for one while holding its own could exhaust the pool.
func (c *stmtCache) txStmt(query string) *sql.Stmt {
	s, full := c.lookup(query)
	if s != nil || full {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[query] {
		return nil
	}
	if c.inflight == nil {
		c.inflight = map[string]bool{}
	}
	c.inflight[query] = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), prepareTimeout)
		defer cancel()
		c.stmt(ctx, query)
		c.mu.Lock()
		delete(c.inflight, query)
		c.mu.Unlock()
	}()
	return nil
}

// check passes err through, and drops s from the cache when PostgreSQL refused
// it because the schema changed under it (see the top of this file).
func (c *stmtCache) check(err error, query string, s *sql.Stmt) error {
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code != "0A000" || !strings.Contains(pqErr.Message, "cached plan") {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stmts[query] == s {
		// Not closed: a concurrent request may be about to run it (and will meet
		// the same error). Left to the pool, it ends with its connections.
		delete(c.stmts, query)
	}
	return err
}

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if !cacheable(len(args)) {
		return c.db.ExecContext(ctx, query, args...)
	}
	if s := c.stmt(ctx, query); s != nil {
		res, err := s.ExecContext(ctx, args...)
		return res, c.check(err, query, s)
	}
	return c.db.ExecContext(ctx, query, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if !cacheable(len(args)) {
		return c.db.QueryContext(ctx, query, args...)
	}
	if s := c.stmt(ctx, query); s != nil {
		rows, err := s.QueryContext(ctx, args...)
		return rows, c.check(err, query, s)
	}
	return c.db.QueryContext(ctx, query, args...)
}

// stmtCacheTx runs a transaction's statements through the cache.
type stmtCacheTx struct {
	tx *sql.Tx
	c  *stmtCache
}

func (t *stmtCacheTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if !cacheable(len(args)) {
		return t.tx.ExecContext(ctx, query, args...)
	}
	if s := t.c.txStmt(query); s != nil {
		res, err := t.tx.StmtContext(ctx, s).ExecContext(ctx, args...)
		return res, t.c.check(err, query, s)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *stmtCacheTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if !cacheable(len(args)) {
		return t.tx.QueryContext(ctx, query, args...)
	}
	if s := t.c.txStmt(query); s != nil {
		rows, err := t.tx.StmtContext(ctx, s).QueryContext(ctx, args...)
		return rows, t.c.check(err, query, s)
	}
	return t.tx.QueryContext(ctx, query, args...)
}
