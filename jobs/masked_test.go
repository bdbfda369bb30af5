package jobs_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/auditlog"
	"github.com/korrigo/korrigo/ent/blob"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/pdf"
	"github.com/korrigo/korrigo/pdf/pdftest"
	"github.com/korrigo/korrigo/server"
)

func pdfURL(t *testing.T, cl interface {
	MustDo(string, map[string]any, any)
}, copyID string) *string {
	t.Helper()
	var q struct{ Node *struct{ PdfUrl *string } }
	cl.MustDo(`query($id: ID!){ node(id: $id){ ... on Copy { pdfUrl } } }`, map[string]any{"id": copyID}, &q)
	if q.Node == nil {
		return nil
	}
	return q.Node.PdfUrl
}

func zoneOf(p pdftest.Page) types.Rectangle {
	m := p.Media
	return *types.NewRectangle(m.LL.X, m.UR.Y-m.Height()*pdf.IdentityZone, m.UR.X, m.UR.Y)
}

// TestPagesMaskedForCorrectors: copy.pdfUrl serves the scanned pages to an
// admin as they are, and to the assigned corrector with the identity zone of
// the header page removed — drawn over, text deleted, pixels painted out —
// rendered once and cached. Other teachers get nothing.
func TestPagesMaskedForCorrectors(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := newEnv(t, d)
		tu, teacher := env.NewUser(user.RoleTEACHER, "zoe")
		ex := env.NewExam(tu)
		id := submit(t, env, uploadScanQ, map[string]any{"e": ex.ID}, readTestdata(t, "class-a3-6students.pdf"))
		if j := waitJob(t, env, id); j.State != "SUCCEEDED" {
			t.Fatalf("split: %+v", j)
		}
		c := copiesOf(t, env, ex.ID)[0]
		c = c.Update().SetAssignedCorrectorID(tu.ID).SaveX(env.Ctx())
		original := copyPDF(t, env, c)

		// Admin: the pages as scanned.
		adminURL := pdfURL(t, env.As(env.Admin()), c.ID)
		if adminURL == nil {
			t.Fatal("admin: no pdfUrl")
		}
		resp, body := get(t, env, env.Admin(), *adminURL)
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("admin download: %d %v", resp.StatusCode, resp.Header)
		}
		if string(body) != string(original) {
			t.Error("admin did not get the stored pages")
		}

		// Corrector: masked, rendered once even when asked concurrently.
		url := pdfURL(t, env.As(teacher), c.ID)
		if url == nil {
			t.Fatal("teacher: no pdfUrl")
		}
		bodies := make([][]byte, 8)
		var wg sync.WaitGroup
		for i := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, b := get(t, env, teacher, *url)
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pdf" {
					t.Errorf("teacher download: %d %s", resp.StatusCode, b)
				}
				bodies[i] = b
			}()
		}
		wg.Wait()
		for _, b := range bodies[1:] {
			if string(b) != string(bodies[0]) {
				t.Fatal("the masked pages differ between requests")
			}
		}
		if n := env.DB.Client.Blob.Query().Where(blob.DerivedKeyNotNil()).CountX(env.Ctx()); n != 1 {
			t.Errorf("%d masked blobs stored, want 1", n)
		}
		masked := bodies[0]
		pages := pdftest.Scan(t, masked)
		if len(pages) != 4 {
			t.Fatalf("%d masked pages, want 4", len(pages))
		}
		srcPages := pdftest.Scan(t, original)
		for i, p := range pages {
			zone := zoneOf(p)
			covered := false
			for _, r := range p.Rects {
				covered = covered || (r.Op == "f" && r.R == zone)
			}
			in, _ := pdftest.Ink(t, masked, i, zone)
			srcIn, _ := pdftest.Ink(t, original, i, zone)
			header := i == 0
			if covered != header {
				t.Errorf("page %d: zone covered=%v, want %v", i+1, covered, header)
			}
			text := p.TextIn(zone)
			switch {
			case header && (text != "" || in != 0 || srcIn == 0):
				t.Errorf("header page: text %q and %d dark pixels left in the zone (source had %d)", text, in, srcIn)
			case !header && (text != srcPages[i].VisibleText() || in != srcIn):
				t.Errorf("page %d changed: text %q, %d dark pixels (source %d)", i+1, text, in, srcIn)
			}
		}
		noOrphans(t, env)

		// Each download is audited: the admin's unmasked one, the corrector's
		// masked ones.
		trail := env.DB.Client.AuditLog.Query().Where(auditlog.Action(server.AuditCopyDownloaded)).AllX(env.Ctx())
		byActor := map[string]int{}
		for _, a := range trail {
			masked, _ := a.Metadata["masked"].(bool)
			if a.Target != c.ID || a.Metadata["kind"] != "pages" || a.ActorID == nil || masked != (*a.ActorID == tu.ID) {
				t.Errorf("audit row %+v", a)
				continue
			}
			byActor[*a.ActorID]++
		}
		if len(trail) != 1+len(bodies) || byActor[tu.ID] != len(bodies) {
			t.Errorf("%d download audit rows (%v), want 1 admin + %d corrector", len(trail), byActor, len(bodies))
		}

		// Another teacher: no copy, and the corrector's link is not theirs.
		_, other := env.NewUser(user.RoleTEACHER, "autre")
		r := env.As(other).Do(`query($id: ID!){ node(id: $id){ ... on Copy { pdfUrl } } }`, map[string]any{"id": c.ID})
		if code := env.ErrorCode(r); code != "NOT_FOUND" {
			t.Errorf("unassigned teacher asking for the link: %s %s", code, r.Data)
		}
		if resp, b := get(t, env, other, *url); resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "FORBIDDEN") {
			t.Errorf("unassigned teacher with a stolen link: %d %s", resp.StatusCode, b)
		}
		if n := env.DB.Client.AuditLog.Query().Where(auditlog.Action(server.AuditCopyDownloaded)).CountX(env.Ctx()); n != len(trail) {
			t.Errorf("a refused download was audited")
		}
		// Reassigned away, the corrector's own link stops working.
		c.Update().ClearAssignedCorrector().ExecX(env.Ctx())
		if resp, _ := get(t, env, teacher, *url); resp.StatusCode == http.StatusOK {
			t.Errorf("unassigned corrector still downloads the pages")
		}
	})
}
