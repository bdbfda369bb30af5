package jobs_test

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/jobs"
	"github.com/korrigo/korrigo/pdf/pdftest"
	"github.com/korrigo/korrigo/server/servertest"
)

// copiesOf returns the exam's copies in anonymous-id order.
func copiesOf(t *testing.T, env *servertest.Env, examID string) []*ent.ExamCopy {
	t.Helper()
	cs, err := env.DB.Client.ExamCopy.Query().Where(examcopy.ExamID(examID)).
		Order(ent.Asc(examcopy.FieldAnonymousID)).All(env.Ctx())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func copyPDF(t *testing.T, env *servertest.Env, c *ent.ExamCopy) []byte {
	t.Helper()
	b, err := env.DB.Client.Blob.Get(env.Ctx(), *c.SourceBlobID)
	if err != nil {
		t.Fatal(err)
	}
	f, err := env.App.Services.Jobs.Store().Open(b.Sha256)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, _ := io.ReadAll(f)
	return data
}

func checkPages(t *testing.T, env *servertest.Env, c *ent.ExamCopy, student int, want []int) {
	t.Helper()
	data := copyPDF(t, env, c)
	texts := pdftest.VisibleTexts(t, data)
	if len(texts) != len(want) || c.PageCount != len(want) {
		t.Fatalf("copy %s: %d pages (pageCount %d), want %d", c.AnonymousID, len(texts), c.PageCount, len(want))
	}
	for i, got := range texts {
		if exp := fmt.Sprintf("KGT s=%02d p=%d", student, want[i]); got != exp {
			t.Errorf("copy %s page %d: visible text %q, want %q", c.AnonymousID, i+1, got, exp)
		}
	}
	for i, sz := range pdftest.MediaSizes(t, data) {
		if math.Abs(sz[0]-595) > 0.5 || math.Abs(sz[1]-842) > 0.5 {
			t.Errorf("copy %s page %d: MediaBox %v, want A4", c.AnonymousID, i+1, sz)
		}
	}
}

func TestUploadScanSplitsClassIntoCopies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := newEnv(t, d)
		ex := env.NewExam()
		id := submit(t, env, uploadScanQ, map[string]any{"e": ex.ID}, readTestdata(t, "class-a3-6students.pdf"))
		j := waitJob(t, env, id)
		if j.State != "SUCCEEDED" || j.Kind != "SPLIT_SCAN" {
			t.Fatalf("job %+v", j)
		}
		if j.Progress.Done != j.Progress.Total || j.Progress.Total != 24 { // per A4 page
			t.Errorf("progress %+v", j.Progress)
		}
		cs := copiesOf(t, env, ex.ID)
		if len(cs) != 6 {
			t.Fatalf("%d copies, want 6", len(cs))
		}
		prefix := jobs.AnonymousPrefix(ex.ID)
		for i, c := range cs {
			if c.Status != examcopy.StatusSTAGING || c.ShortBooklet {
				t.Errorf("copy %d: %s short=%v", i, c.Status, c.ShortBooklet)
			}
			if want := fmt.Sprintf("%s-%03d", prefix, i+1); c.AnonymousID != want {
				t.Errorf("copy %d: anonymous id %s, want %s", i, c.AnonymousID, want)
			}
			checkPages(t, env, c, i+1, []int{1, 2, 3, 4})
		}

		// exam.jobs lists it; a re-upload replaces only STAGING copies.
		var q struct{ Exam struct{ Jobs []apiJob } }
		env.As(env.Admin()).MustDo(`query($id: ID!){ exam: node(id: $id){ ... on Exam { jobs { id state } } } }`,
			map[string]any{"id": ex.ID}, &q)
		if len(q.Exam.Jobs) != 1 || q.Exam.Jobs[0].ID != id {
			t.Errorf("exam.jobs = %+v", q.Exam.Jobs)
		}
		if _, err := env.App.Services.Grading.MarkCopyReady(adminCtx(t, env), cs[0].ID); err != nil {
			t.Fatal(err)
		}
		id2 := submit(t, env, uploadScanQ, map[string]any{"e": ex.ID}, readTestdata(t, "class-a3-odd-scan.pdf"))
		if j := waitJob(t, env, id2); j.State != "SUCCEEDED" {
			t.Fatalf("re-upload: %+v", j)
		}
		cs2 := copiesOf(t, env, ex.ID)
		if len(cs2) != 1+3 {
			t.Fatalf("after re-upload: %d copies, want the READY one + 3", len(cs2))
		}
		if cs2[0].ID != cs[0].ID || cs2[0].Status != examcopy.StatusREADY {
			t.Errorf("the READY copy was touched: %+v", cs2[0])
		}
		seen := map[string]bool{}
		for _, c := range cs2 {
			if seen[c.AnonymousID] {
				t.Errorf("duplicate anonymous id %s", c.AnonymousID)
			}
			seen[c.AnonymousID] = true
		}
		// Odd scan: two full booklets, then a short one with P1 and P4.
		staging := cs2[1:]
		for i, c := range staging[:2] {
			checkPages(t, env, c, i+1, []int{1, 2, 3, 4})
		}
		if last := staging[2]; !last.ShortBooklet || last.PageCount != 2 {
			t.Errorf("last copy: short=%v pages=%d, want short with 2 pages", last.ShortBooklet, last.PageCount)
		} else {
			checkPages(t, env, last, 3, []int{1, 4})
		}
	})
}

func TestImportCopy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := newEnv(t, d)
		ex := env.NewExam()
		st := env.NewStudent(nil)
		id := submit(t, env, importCopyQ, map[string]any{"e": ex.ID, "s": st.ID}, readTestdata(t, "copy-a4-8p.pdf"))
		if j := waitJob(t, env, id); j.State != "SUCCEEDED" || j.Kind != "IMPORT_COPY" {
			t.Fatalf("job %+v", j)
		}
		cs := copiesOf(t, env, ex.ID)
		if len(cs) != 1 || cs[0].PageCount != 8 || cs[0].StudentID == nil || *cs[0].StudentID != st.ID {
			t.Fatalf("copies %+v", cs)
		}
		if n := len(pdftest.VisibleTexts(t, copyPDF(t, env, cs[0]))); n != 8 {
			t.Errorf("%d pages", n)
		}
	})
}

func TestRefusedUploadsStoreNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := newEnv(t, d)
		ex := env.NewExam()
		admin := env.Admin()
		csrf := map[string]string{"X-Korrigo-Csrf": "1"}
		for name, reason := range map[string]string{
			"bad-empty.pdf":        "empty",
			"bad-encrypted.pdf":    "encrypted",
			"bad-garbage-body.pdf": "",
			"bad-not-a-pdf.pdf":    "not_a_pdf",
			"bad-truncated.pdf":    "",
		} {
			r := upload(t, env, admin, csrf, uploadScanQ, map[string]any{"e": ex.ID}, readTestdata(t, name))
			if r.code() != "INVALID_PDF" {
				t.Errorf("%s: %+v", name, r.Errors)
				continue
			}
			got, _ := r.Errors[0].Extensions["reason"].(string)
			if reason != "" && got != reason || got == "" {
				t.Errorf("%s: reason %q, want %q", name, got, reason)
			}
		}
		// 51 MB: refused while streaming.
		big := bytes.Repeat([]byte("%PDF-1.7\n"), 51<<20/9)
		if r := upload(t, env, admin, nil, uploadScanQ, map[string]any{"e": ex.ID}, big); r.code() != "PAYLOAD_TOO_LARGE" || r.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("51 MB: status %d %+v", r.Status, r.Errors)
		}
		// Unknown length (chunked): counted while streaming.
		if r := uploadChunked(t, env, admin, big); r.code() != "PAYLOAD_TOO_LARGE" {
			t.Errorf("51 MB chunked: status %d %+v", r.Status, r.Errors)
		}
		// CSRF: a cookie-authenticated multipart request without a preflight header.
		if r := uploadCookie(t, env, admin, readTestdata(t, "copy-a4-4p.pdf")); r.Status != http.StatusBadRequest {
			t.Errorf("multipart without preflight header: status %d", r.Status)
		}
		// A teacher may not upload.
		_, teacher := env.NewUser("TEACHER", "prof")
		if r := upload(t, env, teacher, nil, uploadScanQ, map[string]any{"e": ex.ID}, readTestdata(t, "copy-a4-4p.pdf")); r.code() != "FORBIDDEN" {
			t.Errorf("teacher upload: %+v", r.Errors)
		}
		if c := counts(t, env); c != "blobs=0 copies=0 jobs=0 files=0" {
			t.Errorf("after refused uploads: %s", c)
		}
		var me struct{ Me struct{ Role string } }
		env.As(admin).MustDo(`{ me { role } }`, nil, &me)
		if me.Me.Role != "ADMIN" {
			t.Errorf("server no longer answers: %+v", me)
		}
		_ = strings.TrimSpace
	})
}
