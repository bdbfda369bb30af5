// Command migrate plans a new versioned migration from the ent schema, for SQLite
// (against an in-memory dev database) and PostgreSQL (against a throw-away database
// on a local server), by replaying migrations/<dialect> and diffing with the schema.
//
//	go run ./tools/migrate -name add_x      # write new migration files
//	go run ./tools/migrate -check           # fail when the schema has unplanned changes
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/url"
	"os"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/sqltool"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"
	_ "github.com/lib/pq"
	_ "modernc.org/sqlite"

	"github.com/korrigo/korrigo/ent"
)

func main() {
	name := flag.String("name", "", "name of the new migration (required unless -check)")
	check := flag.Bool("check", false, "fail if the migrations do not match the ent schema")
	pgURL := flag.String("postgres", envOr("KORRIGO_DEV_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"PostgreSQL server used to create a throw-away dev database")
	only := flag.String("dialect", "", "only this dialect (sqlite or postgres)")
	flag.Parse()
	if *name == "" && !*check {
		log.Fatal("migrate: -name or -check is required")
	}
	ctx := context.Background()
	var failed bool
	for _, dia := range []string{dialect.SQLite, dialect.Postgres} {
		if *only != "" && *only != dia && !(*only == "sqlite" && dia == dialect.SQLite) {
			continue
		}
		err := diff(ctx, dia, *name, *check, *pgURL)
		switch {
		case *check && errors.Is(err, errDrift):
			log.Printf("migrate: %s migrations are behind the ent schema: run `make migration name=<change>`", dia)
			failed = true
		case err != nil:
			log.Fatalf("migrate: %s: %v", dia, err)
		case *check:
			log.Printf("migrate: %s migrations match the ent schema", dia)
		}
	}
	if failed {
		os.Exit(1)
	}
}

var errDrift = errors.New("schema drift")

func diff(ctx context.Context, dia, name string, check bool, pgURL string) error {
	dirPath := "migrations/sqlite"
	if dia == dialect.Postgres {
		dirPath = "migrations/postgres"
	}
	dir, err := sqltool.NewGooseDir(dirPath)
	if err != nil {
		return fmt.Errorf("open %s: %w", dirPath, err)
	}
	devDB, cleanup, err := openDev(ctx, dia, pgURL)
	if err != nil {
		return err
	}
	defer cleanup()
	client := ent.NewClient(ent.Driver(entsql.OpenDB(dia, devDB)))
	opts := []schema.MigrateOption{
		schema.WithDir(dir),
		schema.WithMigrationMode(schema.ModeReplay),
		schema.WithDialect(dia),
		schema.WithFormatter(sqltool.GooseFormatter),
		schema.WithDropColumn(true),
		schema.WithDropIndex(true),
	}
	if check {
		opts = append(opts, schema.WithErrNoPlan(true))
		if name == "" {
			name = "drift"
		}
	}
	err = client.Schema.NamedDiff(ctx, name, opts...)
	if err == nil && dia == dialect.SQLite {
		err = fixSQLiteDown(dir)
	}
	switch {
	case check && err == nil:
		return errDrift // a plan was written next to the others: the schema moved on
	case check && errors.Is(err, migrate.ErrNoPlan):
		return nil
	}
	return err
}

func openDev(ctx context.Context, dia, pgURL string) (*sql.DB, func(), error) {
	if dia == dialect.SQLite {
		db, err := sql.Open("sqlite", "file:dev?mode=memory&_pragma=foreign_keys(1)")
		if err != nil {
			return nil, nil, fmt.Errorf("open in-memory SQLite: %w", err)
		}
		db.SetMaxOpenConns(1) // one in-memory database, shared by every statement
		return db, func() { db.Close() }, nil
	}
	admin, err := sql.Open("postgres", pgURL)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", pgURL, err)
	}
	name := fmt.Sprintf("korrigo_migrate_dev_%d", rand.Uint32())
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return nil, nil, fmt.Errorf("create dev database (is PostgreSQL running?): %w", err)
	}
	u, _ := url.Parse(pgURL)
	u.Path = "/" + name
	db, err := sql.Open("postgres", u.String())
	if err != nil {
		return nil, nil, fmt.Errorf("open dev database: %w", err)
	}
	return db, func() {
		db.Close()
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			log.Printf("migrate: drop dev database %s: %v", name, err)
		}
		admin.Close()
	}, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
