package migrations

import (
	"context"
	"database/sql"
	"fmt"

	"entgo.io/ent/dialect"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// River's own tables (river_job, river_leader, river_queue, …) are versioned
// with ours: one goose migration, written in Go, applies River's migrations
// up to RiverVersion in the same transaction as goose's bookkeeping, and its
// down removes them all. River ships that SQL per driver; exporting it into
// .sql files here would make the ent/Atlas drift check (tools/migrate), which
// replays the .sql files only, plan to drop River's tables. A Go migration is
// invisible to that replay and still runs in order with the others.
//
// Upgrading River to a release with new migrations: add another Go migration
// here that moves RiverVersion forward (never edit this one).
const (
	riverMigrationVersion = 20261129222338
	// RiverVersion is the River schema version our migrations bring a
	// database to (River v0.51: migrations 001–008, same for both drivers).
	RiverVersion = 8
)

func riverMigration(dia string) *goose.Migration {
	if dia == dialect.Postgres {
		// Outside a transaction: River's PostgreSQL migrations add enum values
		// and use them in later steps, which one transaction does not allow.
		// River runs each of its steps in its own transaction and records it in
		// river_migration, so a crash between two steps resumes cleanly.
		run := func(direction rivermigrate.Direction, target int) func(context.Context, *sql.DB) error {
			return func(ctx context.Context, db *sql.DB) error {
				m, err := rivermigrate.New(riverdatabasesql.New(db), nil)
				if err == nil {
					_, err = m.Migrate(ctx, direction, &rivermigrate.MigrateOpts{TargetVersion: target})
				}
				if err != nil {
					return fmt.Errorf("river migrations %s: %w", direction, err)
				}
				return nil
			}
		}
		return goose.NewGoMigration(riverMigrationVersion,
			&goose.GoFunc{RunDB: run(rivermigrate.DirectionUp, RiverVersion)},
			&goose.GoFunc{RunDB: run(rivermigrate.DirectionDown, -1)})
	}
	// SQLite: in goose's transaction, with its version row.
	run := func(direction rivermigrate.Direction, target int) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			m, err := rivermigrate.New(riversqlite.New(nil), nil)
			if err == nil {
				_, err = m.MigrateTx(ctx, tx, direction, &rivermigrate.MigrateOpts{TargetVersion: target})
			}
			if err != nil {
				return fmt.Errorf("river migrations %s: %w", direction, err)
			}
			return nil
		}
	}
	return goose.NewGoMigration(riverMigrationVersion,
		&goose.GoFunc{RunTx: run(rivermigrate.DirectionUp, RiverVersion)},
		&goose.GoFunc{RunTx: run(rivermigrate.DirectionDown, -1)})
}
