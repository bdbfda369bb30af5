package db

import (
	"context"

	"github.com/korrigo/korrigo/migrations"
)

// Migrate applies the pending embedded migrations.
func (d *DB) Migrate(ctx context.Context) error {
	_, err := migrations.Up(ctx, d.SQL, d.Dialect)
	return err
}
