package migrations_test

import (
	"context"
	"testing"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/migrations"
)

// Up → down (to nothing) → up again, on every database: every migration is
// reversible and the down scripts leave nothing behind that the up scripts trip on.
func TestUpDownUp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		st, err := migrations.Status(ctx, d.SQL, d.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		if len(st) == 0 {
			t.Fatal("no migrations embedded")
		}
		for _, s := range st {
			if s.State != "applied" {
				t.Fatalf("migration %d is %s after up", s.Source.Version, s.State)
			}
		}
		down, err := migrations.DownTo(ctx, d.SQL, d.Dialect, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(down) != len(st) {
			t.Fatalf("rolled back %d of %d migrations", len(down), len(st))
		}
		if n := userTables(t, d); n != 0 {
			t.Fatalf("%d tables left after down", n)
		}
		if _, err := migrations.Up(ctx, d.SQL, d.Dialect); err != nil {
			t.Fatalf("up after down: %v", err)
		}
		if _, err := d.Client.User.Query().Count(rules.System(ctx)); err != nil {
			t.Fatalf("schema unusable after up → down → up: %v", err)
		}
	})
}

func userTables(t *testing.T, d *db.DB) int {
	t.Helper()
	q := `SELECT count(*) FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name <> 'goose_db_version'`
	if d.Dialect == "postgres" {
		q = `SELECT count(*) FROM information_schema.tables WHERE table_schema='public' AND table_name <> 'goose_db_version'`
	}
	var n int
	if err := d.SQL.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
