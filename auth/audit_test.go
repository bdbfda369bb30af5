package auth

import (
	"strings"
	"testing"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
)

func TestAudit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := WithClientIP(f.adminCtx, "2001:db8::1")
		if ClientIPFromContext(ctx) != "2001:db8::1" || ClientIPFromContext(f.ctx) != "" {
			t.Fatal("client IP context round trip")
		}
		if err := f.svc.Audit(ctx, "EXPORT_DOWNLOADED", "exm_1", map[string]any{"format": "PRONOTE"}); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Audit(f.ctx, "ANONYMOUS_THING", strings.Repeat("é", 300), nil); err != nil {
			t.Fatalf("an over-long target must be truncated, not refused: %v", err)
		}
		rows := f.audits("EXPORT_DOWNLOADED")
		if len(rows) != 1 || rows[0].ActorID == nil || *rows[0].ActorID != f.admin.ID ||
			rows[0].IP != "2001:db8::1" || rows[0].Target != "exm_1" || rows[0].Metadata["format"] != "PRONOTE" ||
			!rows[0].At.Equal(f.clock.Now()) {
			t.Fatalf("audit rows = %+v", rows)
		}
		if rows := f.audits("ANONYMOUS_THING"); len(rows) != 1 || rows[0].ActorID != nil {
			t.Fatalf("anonymous audit = %+v", rows)
		}
	})
}
