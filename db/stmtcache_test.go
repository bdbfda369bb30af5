package db_test

import (
	"context"
	"strings"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/user"
)

// On PostgreSQL, ent's statements are prepared once per connection and reused,
// in and out of transactions: one round trip each instead of lib/pq's two
// (issue 8). With one pooled connection, pg_prepared_statements on it shows
// every statement prepared exactly once however often it ran.
func TestPostgresStatementsArePreparedOnce(t *testing.T) {
	if dbtest.PostgresURL() == "" {
		t.Skip("KORRIGO_TEST_POSTGRES_URL not set")
	}
	d := dbtest.Open(t, dialect.Postgres)
	d.SQL.SetMaxOpenConns(1)
	ctx := rules.System(context.Background())
	u, err := d.Client.User.Create().SetEmail("prep@school.example").SetName("Prep").
		SetRole(user.RoleTEACHER).SetPasswordHash("x").Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := d.Client.User.Query().Where(user.ID(u.ID)).Only(ctx); err != nil {
			t.Fatal(err)
		}
		err := db.WithTx(ctx, d.Client, func(tx *ent.Tx) error {
			if _, err := tx.User.Query().Where(user.ID(u.ID)).Only(ctx); err != nil {
				return err
			}
			return tx.User.Update().Where(user.ID(u.ID)).SetName("Prep").Exec(ctx)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The user query ran 3 times outside a transaction and 3 times inside one:
	// prepared once, executed 6 times (custom_plans + generic_plans count runs).
	runs := map[string]int64{}
	rows, err := d.SQL.Query(`SELECT statement, custom_plans + generic_plans FROM pg_prepared_statements`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			stmt string
			n    int64
		)
		if err := rows.Scan(&stmt, &n); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(stmt, `SELECT "users"."id"`) {
			runs[stmt] += n
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Fatalf("prepared user queries %v: want exactly one", runs)
	}
	for _, n := range runs {
		if n != 6 {
			t.Fatalf("the prepared user query ran %d times, want 6 (3 outside a transaction, 3 in one)", n)
		}
	}
}

// A migration that changes the type of a selected column invalidates the
// prepared statement: PostgreSQL refuses it once, and the next use prepares it
// again instead of failing for the life of the process.
func TestPostgresPreparedStatementSurvivesTypeChange(t *testing.T) {
	if dbtest.PostgresURL() == "" {
		t.Skip("KORRIGO_TEST_POSTGRES_URL not set")
	}
	d := dbtest.Open(t, dialect.Postgres)
	d.SQL.SetMaxOpenConns(1)
	ctx := context.Background()
	if _, err := d.SQL.Exec(`CREATE TABLE probe (id text PRIMARY KEY, n integer); INSERT INTO probe VALUES ('a', 7)`); err != nil {
		t.Fatal(err)
	}
	read := func() error {
		rows, err := d.Client.QueryContext(ctx, `SELECT n FROM probe WHERE id = $1`, "a")
		if err != nil {
			return err
		}
		defer rows.Close()
		if !rows.Next() {
			t.Fatalf("no row: %v", rows.Err())
		}
		var n int64
		if err := rows.Scan(&n); err != nil || n != 7 {
			t.Fatalf("n = %d, %v", n, err)
		}
		return rows.Close()
	}
	if err := read(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SQL.Exec(`ALTER TABLE probe ALTER COLUMN n TYPE bigint`); err != nil {
		t.Fatal(err)
	}
	if err := read(); err != nil {
		t.Logf("first read after the type change: %v", err) // expected: the cached plan is refused
	}
	if err := read(); err != nil {
		t.Fatalf("second read after the type change: %v", err)
	}
}
