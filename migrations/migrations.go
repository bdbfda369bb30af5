// Package migrations holds the versioned SQL migrations (goose format, generated
// by tools/migrate from the ent schema) for PostgreSQL and SQLite, embedded in the
// binary, and applies them.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"entgo.io/ent/dialect"
	"github.com/pressly/goose/v3"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// FS returns the migration folder of a dialect.
func FS(dia string) (fs.FS, error) {
	dir := "sqlite"
	if dia == dialect.Postgres {
		dir = "postgres"
	}
	return fs.Sub(files, dir)
}

func provider(db *sql.DB, dia string) (*goose.Provider, error) {
	fsys, err := FS(dia)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	gd := goose.DialectSQLite3
	if dia == dialect.Postgres {
		gd = goose.DialectPostgres
	}
	p, err := goose.NewProvider(gd, db, fsys, goose.WithGoMigrations(riverMigration(dia)))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Up applies every pending migration.
func Up(ctx context.Context, db *sql.DB, dia string) ([]*goose.MigrationResult, error) {
	p, err := provider(db, dia)
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("migrations up: %w", err)
	}
	return res, nil
}

// Down rolls back the most recent migration.
func Down(ctx context.Context, db *sql.DB, dia string) (*goose.MigrationResult, error) {
	p, err := provider(db, dia)
	if err != nil {
		return nil, err
	}
	res, err := p.Down(ctx)
	if err != nil {
		return res, fmt.Errorf("migrations down: %w", err)
	}
	return res, nil
}

// DownTo rolls back every migration newer than version (0: all of them).
func DownTo(ctx context.Context, db *sql.DB, dia string, version int64) ([]*goose.MigrationResult, error) {
	p, err := provider(db, dia)
	if err != nil {
		return nil, err
	}
	res, err := p.DownTo(ctx, version)
	if err != nil {
		return res, fmt.Errorf("migrations down to %d: %w", version, err)
	}
	return res, nil
}

// Status lists every migration and whether it is applied.
func Status(ctx context.Context, db *sql.DB, dia string) ([]*goose.MigrationStatus, error) {
	p, err := provider(db, dia)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations status: %w", err)
	}
	return st, nil
}
