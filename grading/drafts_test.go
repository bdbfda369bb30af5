package grading

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/draft"
)

// 100 autosaves of one tab at once: all succeed, versions exactly 1..100.
func TestSaveDraftSameTabConcurrent(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		const saves = 100
		versions := make([]int, saves)
		errs := make([]error, saves)
		began := time.Now()
		race(saves, func(i int) {
			dr, err := f.svc.SaveDraft(as(f.teacher), f.copy.ID, "tab-A", rawJSON(fmt.Sprintf(`{"n":%d}`, i)), nil)
			errs[i] = err
			if err == nil {
				versions[i] = dr.Version
			}
		})
		t.Logf("%d concurrent saves on %s: %v", saves, d.Dialect, time.Since(began))
		for i, err := range errs {
			if err != nil {
				t.Fatalf("save %d: %v", i, err)
			}
		}
		slices.Sort(versions)
		for i, v := range versions {
			if v != i+1 {
				t.Fatalf("versions %v, want 1..%d without gaps or repeats", versions, saves)
			}
		}
		stored, err := f.svc.MyDraft(as(f.teacher), f.copy.ID)
		if err != nil || stored.Version != saves || stored.ClientID != "tab-A" {
			t.Fatalf("stored draft %+v %v", stored, err)
		}
	})
}

// Two tabs' first saves race: one creates the draft, the other gets
// VERSION_CONFLICT with version 1, never another error.
func TestSaveDraftTwoTabsRace(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		const rounds = 50
		for round := range rounds {
			c := f.newCopy("READY", f.teacher)
			errs := make([]error, 2)
			race(2, func(i int) {
				_, errs[i] = f.svc.SaveDraft(as(f.teacher), c.ID, fmt.Sprintf("tab-%d", i), rawJSON(`{}`), nil)
			})
			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
					continue
				}
				if e := wantCode(t, err, apperr.VersionConflict, "the slower tab"); e.Extensions["currentVersion"] != 1 {
					t.Fatalf("round %d: currentVersion %v, want 1", round, e.Extensions["currentVersion"])
				}
			}
			if ok != 1 {
				t.Fatalf("round %d: %d tabs succeeded (%v)", round, ok, errs)
			}
		}
	})
}

// Another tab takes the draft over by naming the stored version; the first tab is
// then the stale one.
func TestSaveDraftTakeover(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := as(f.teacher)
		for range 3 {
			if _, err := f.svc.SaveDraft(ctx, f.copy.ID, "tab-A", rawJSON(`{"from":"A"}`), nil); err != nil {
				t.Fatal(err)
			}
		}
		_, err := f.svc.SaveDraft(ctx, f.copy.ID, "tab-B", rawJSON(`{"from":"B"}`), nil)
		if e := wantCode(t, err, apperr.VersionConflict, "another tab"); e.Extensions["currentVersion"] != 3 {
			t.Fatalf("currentVersion %v, want 3", e.Extensions["currentVersion"])
		}
		_, err = f.svc.SaveDraft(ctx, f.copy.ID, "tab-B", rawJSON(`{"from":"B"}`), new(2))
		wantCode(t, err, apperr.VersionConflict, "takeover from a stale base")

		dr, err := f.svc.SaveDraft(ctx, f.copy.ID, "tab-B", rawJSON(`{"from":"B"}`), new(3))
		if err != nil || dr.Version != 4 || dr.ClientID != "tab-B" || !strings.Contains(string(dr.Payload), `"B"`) {
			t.Fatalf("takeover: %+v %v", dr, err)
		}
		_, err = f.svc.SaveDraft(ctx, f.copy.ID, "tab-A", rawJSON(`{"from":"A"}`), nil)
		wantCode(t, err, apperr.VersionConflict, "the tab that lost the draft")
		if dr, err := f.svc.SaveDraft(ctx, f.copy.ID, "tab-B", rawJSON(`{}`), new(1)); err != nil || dr.Version != 5 {
			t.Fatalf("the owning tab with any base: %+v %v", dr, err)
		}

		// Drafts are personal: an admin's draft of the same copy is another row.
		if dr, err := f.svc.SaveDraft(as(f.admin), f.copy.ID, "tab-Z", rawJSON(`{}`), nil); err != nil || dr.Version != 1 {
			t.Fatalf("admin's own draft: %+v %v", dr, err)
		}
		if mine, _ := f.svc.MyDraft(as(f.admin), f.copy.ID); mine == nil || mine.ClientID != "tab-Z" {
			t.Fatalf("admin's MyDraft: %+v", mine)
		}

		ok, err := f.svc.DiscardDraft(ctx, f.copy.ID)
		if !ok || err != nil {
			t.Fatalf("discard: %v %v", ok, err)
		}
		if ok, _ := f.svc.DiscardDraft(ctx, f.copy.ID); ok {
			t.Fatal("discarding twice found a draft")
		}
		if n, _ := d.Client.Draft.Query().Where(draft.CopyID(f.copy.ID)).Count(f.sys); n != 1 {
			t.Fatalf("%d drafts left, want the admin's", n)
		}
		if dr, err := f.svc.SaveDraft(ctx, f.copy.ID, "tab-C", rawJSON(`{}`), nil); err != nil || dr.Version != 1 {
			t.Fatalf("save after discard: %+v %v", dr, err)
		}
	})
}

func TestSaveDraftNeedsNoLease(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.acquire(f.admin, f.copy) // someone else holds the copy
		if _, err := f.svc.SaveDraft(as(f.teacher), f.copy.ID, "tab", rawJSON(`{"typed":"work"}`), nil); err != nil {
			t.Fatalf("autosave while another holds the lease: %v", err)
		}
	})
}

// SaveDraft answers with the draft it wrote without reading it back: every
// field it returns is the stored one, on creation, on a move forward and on a
// takeover.
func TestSaveDraftReturnsTheStoredDraft(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := as(f.teacher)
		for i, step := range []struct {
			client string
			base   *int
		}{{"tab-A", nil}, {"tab-A", nil}, {"tab-B", new(2)}} {
			got, err := f.svc.SaveDraft(ctx, f.copy.ID, step.client, rawJSON(fmt.Sprintf(`{"step": %d}`, i)), step.base)
			if err != nil {
				t.Fatalf("save %d: %v", i, err)
			}
			stored, err := f.svc.MyDraft(ctx, f.copy.ID)
			if err != nil || stored == nil {
				t.Fatalf("read back %d: %+v %v", i, stored, err)
			}
			var gotPayload, storedPayload any
			if err := json.Unmarshal(got.Payload, &gotPayload); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(stored.Payload, &storedPayload); err != nil {
				t.Fatal(err)
			}
			if got.ID != stored.ID || got.Version != stored.Version || got.Version != i+1 ||
				got.ClientID != stored.ClientID || got.CopyID != stored.CopyID || got.OwnerID != stored.OwnerID ||
				!got.CreatedAt.Equal(stored.CreatedAt) || !got.UpdatedAt.Equal(stored.UpdatedAt) ||
				!reflect.DeepEqual(gotPayload, storedPayload) {
				t.Fatalf("save %d answered %+v, stored %+v", i, got, stored)
			}
		}
	})
}
