package graph_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/auditlog"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/jobs"
	"github.com/korrigo/korrigo/server/servertest"
)

const exportJobQ = `mutation($e: ID!, $f: GradeExportFormat!, $k: Float){ exportGrades(examId: $e, format: $f, coefficient: $k){ id kind state } }`

type exportJob struct {
	ID, Kind, State string
	Error           *string
	DownloadURL     *string
	Result          json.RawMessage
}

// requestExport asks for an export as the admin and returns the job id.
func requestExport(t *testing.T, admin *servertest.Client, examID, format string) string {
	t.Helper()
	var made struct{ ExportGrades struct{ ID, Kind string } }
	admin.MustDo(exportJobQ, map[string]any{"e": examID, "f": format}, &made)
	return made.ExportGrades.ID
}

// waitExport polls the job until it ends (no wall-clock limit: the test
// binary's timeout is the backstop).
func waitExport(t *testing.T, c *servertest.Client, id string) exportJob {
	t.Helper()
	for {
		var out struct{ Job exportJob }
		c.MustDo(`query($id: ID!){ job(id: $id){ id kind state error downloadUrl result } }`, map[string]any{"id": id}, &out)
		switch out.Job.State {
		case "SUCCEEDED", "FAILED", "CANCELLED":
			return out.Job
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type download struct {
	Status int
	Header http.Header
	Body   []byte
}

// fetch GETs a path of the test server with a bearer token ("" = none).
func fetch(t *testing.T, env *servertest.Env, token, path string) download {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, env.Server.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return download{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

func adminID(t *testing.T, env *servertest.Env) string {
	t.Helper()
	return env.DB.Client.User.Query().Where(user.Email(servertest.AdminEmail)).OnlyX(env.Ctx()).ID
}

func auditCount(t *testing.T, env *servertest.Env, action string) int {
	t.Helper()
	n, err := env.DB.Client.AuditLog.Query().Where(auditlog.Action(action)).Count(env.Ctx())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestExportGradesJob(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		env.StartJobs()
		adminTok := env.Admin()
		admin := env.As(adminTok)
		teacher, teacherTok := env.NewUser(user.RoleTEACHER, "Claire")
		ex := env.NewExam(teacher)
		st := env.DB.Client.Student.Create().SetLastName("N'DIAYE").SetFirstName("Aïssatou").SetBirthDate("2005-07-07").
			SetClassName("T.02").SaveX(env.Ctx())

		// Blockers are named at request time, and nothing is queued.
		if r := admin.Do(exportJobQ, map[string]any{"e": ex.ID, "f": "PRONOTE"}); env.ErrorCode(r) != "BAD_USER_INPUT" ||
			!strings.Contains(r.Errors[0].Message, "GRADED") {
			t.Fatalf("nothing graded: %+v", r.Errors)
		}
		if r := admin.Do(exportJobQ, map[string]any{"e": ex.ID, "f": "PDF_ZIP"}); env.ErrorCode(r) != "BAD_USER_INPUT" ||
			!strings.Contains(r.Errors[0].Message, "GRADED") {
			t.Fatalf("PDF_ZIP with nothing graded: %+v", r.Errors)
		}
		anon := gradedCopy(t, env, ex, servertest.CopyOpts{Corrector: teacher}, 1, 1, "")
		if r := admin.Do(exportJobQ, map[string]any{"e": ex.ID, "f": "PRONOTE"}); env.ErrorCode(r) != "BAD_USER_INPUT" ||
			!strings.Contains(r.Errors[0].Message, anon.AnonymousID) {
			t.Fatalf("unidentified graded copy: %+v", r.Errors)
		}
		if code := env.ErrorCode(admin.Do(exportJobQ, map[string]any{"e": ex.ID, "f": "CSV", "k": 0})); code != "BAD_USER_INPUT" {
			t.Fatalf("coefficient 0: %s", code)
		}
		if n, _ := env.DB.Client.Job.Query().Count(env.Ctx()); n != 0 {
			t.Fatalf("%d jobs queued by refused exports", n)
		}
		env.DB.Client.ExamCopy.UpdateOneID(anon.ID).SetStudentID(st.ID).SetAppreciation("=1+1 Très bien").ExecX(env.Ctx())

		var made struct {
			ExportGrades struct{ ID, Kind, State string }
		}
		admin.MustDo(exportJobQ, map[string]any{"e": ex.ID, "f": "PRONOTE", "k": 2}, &made)
		if made.ExportGrades.Kind != "EXPORT_GRADES" {
			t.Fatalf("job: %+v", made)
		}
		j := waitExport(t, admin, made.ExportGrades.ID)
		var res struct {
			Format, Filename, MediaType, SHA256, Content string
			Rows                                         int
			Size                                         int64
		}
		_ = json.Unmarshal(j.Result, &res)
		want := "\ufeffNOM;PRENOM;DATE_NAISSANCE;MATIERE;NOTE;COEFF;COMMENTAIRE\r\n" +
			"N'DIAYE;Aïssatou;07/07/2005;" + strings.ToUpper(ex.Name) + ";4,00;2,0;1+1 Très bien\r\n"
		if j.State != "SUCCEEDED" || res.Rows != 1 || res.Size != int64(len(want)) || len(res.SHA256) != 64 ||
			res.Content != "" || !strings.HasSuffix(res.Filename, "-pronote.csv") || j.DownloadURL == nil {
			t.Fatalf("export job: %+v %s", j, j.Result)
		}

		// The admin downloads the file through the signed link.
		got := fetch(t, env, adminTok, *j.DownloadURL)
		_, params, _ := mime.ParseMediaType(got.Header.Get("Content-Disposition"))
		if got.Status != http.StatusOK || string(got.Body) != want || got.Header.Get("Cache-Control") != "no-store" ||
			got.Header.Get("Content-Type") != "text/csv; charset=utf-8" || params["filename"] != res.Filename ||
			!strings.HasPrefix(got.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("download: %d %v %q", got.Status, got.Header, got.Body)
		}
		if n := auditCount(t, env, "EXPORT_DOWNLOADED"); n != 1 {
			t.Fatalf("%d download audit rows", n)
		}
		// The request and the completion are audited, on the admin's behalf,
		// with the exam, the kind and the row count.
		done := env.DB.Client.AuditLog.Query().Where(auditlog.Action("GRADES_EXPORTED")).AllX(env.Ctx())
		if len(done) != 1 || done[0].Target != ex.ID || done[0].ActorID == nil || *done[0].ActorID != adminID(t, env) ||
			fmt.Sprint(done[0].Metadata["rows"]) != "1" || done[0].Metadata["kind"] != "EXPORT_GRADES" ||
			done[0].Metadata["jobId"] != j.ID {
			t.Fatalf("completion audit: %+v", done)
		}
		if n := auditCount(t, env, "EXPORT_REQUESTED"); n != 1 {
			t.Fatalf("%d request audit rows", n)
		}

		// Not for anyone else: without credentials, with the admin's link as
		// a teacher, with a link signed for the teacher (valid signature, not
		// an admin), with a tampered or an expired signature.
		if got := fetch(t, env, "", *j.DownloadURL); got.Status != http.StatusUnauthorized {
			t.Fatalf("anonymous download: %d", got.Status)
		}
		if got := fetch(t, env, teacherTok, *j.DownloadURL); got.Status != http.StatusForbidden || !strings.Contains(string(got.Body), "FORBIDDEN") {
			t.Fatalf("teacher with the admin's link: %d %s", got.Status, got.Body)
		}
		signer := env.App.Services.Files
		own := signer.ExportURL(j.ID, res.Filename, teacher.ID)
		if got := fetch(t, env, teacherTok, own); got.Status != http.StatusForbidden || !strings.Contains(string(got.Body), "FORBIDDEN") {
			t.Fatalf("teacher with a link signed for them: %d %s", got.Status, got.Body)
		}
		tampered := strings.Replace(*j.DownloadURL, "sig=", "sig=A", 1)
		if got := fetch(t, env, adminTok, tampered); got.Status != http.StatusForbidden {
			t.Fatalf("tampered signature: %d", got.Status)
		}
		other := env.NewExam()
		forged := strings.Replace(*j.DownloadURL, j.ID, other.ID, 1)
		if got := fetch(t, env, adminTok, forged); got.Status != http.StatusForbidden {
			t.Fatalf("signature moved to another id: %d", got.Status)
		}
		expired := signer.WithClock(func() time.Time { return time.Now().Add(-time.Hour) }).ExportURL(j.ID, res.Filename, adminID(t, env))
		if got := fetch(t, env, adminTok, expired); got.Status != http.StatusForbidden {
			t.Fatalf("expired signature: %d", got.Status)
		}
		if n := auditCount(t, env, "EXPORT_DOWNLOADED"); n != 1 {
			t.Fatalf("%d download audit rows after refused downloads", n)
		}
		// The job (and its link) is not the exam's corrector's to read.
		r := env.As(teacherTok).Do(`query($id: ID!){ job(id: $id){ result downloadUrl } }`, map[string]any{"id": j.ID})
		if strings.Contains(string(r.Data), "sig=") || strings.Contains(string(r.Data), res.SHA256) {
			t.Fatalf("teacher reads the export job: %s", r.Data)
		}
		// A teacher cannot ask for any export.
		for _, f := range []string{"PRONOTE", "CSV", "PDF_ZIP"} {
			if code := env.ErrorCode(env.As(teacherTok).Do(exportJobQ, map[string]any{"e": ex.ID, "f": f})); code != "FORBIDDEN" {
				t.Fatalf("teacher export %s: %s", f, code)
			}
		}
	})
}

// storeFinalPDF stores data as cp's final PDF (blob file and row).
func storeFinalPDF(t *testing.T, env *servertest.Env, cp *ent.ExamCopy, data []byte) *ent.Blob {
	t.Helper()
	ref, err := env.App.Services.Jobs.Store().Put(context.Background(), bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	b := env.DB.Client.Blob.Create().SetSha256(ref.SHA256).SetSize(ref.Size).SetMediaType("application/pdf").SetPages(1).
		SaveX(env.Ctx())
	env.DB.Client.ExamCopy.UpdateOneID(cp.ID).SetFinalBlobID(b.ID).ExecX(env.Ctx())
	return b
}

// EXPORT_PDFS: one ZIP entry per GRADED copy whose final PDF is readable,
// named by anonymous id; a missing and a damaged file are reported per copy
// and do not stop the export.
func TestExportPDFZip(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		env.StartJobs()
		adminTok := env.Admin()
		admin := env.As(adminTok)
		teacher, teacherTok := env.NewUser(user.RoleTEACHER, "Claire")
		ex := env.NewExam(teacher)
		store := env.App.Services.Jobs.Store()

		contents := map[string][]byte{}
		var good []*ent.ExamCopy
		for i := range 3 {
			cp := gradedCopy(t, env, ex, servertest.CopyOpts{Corrector: teacher}, 2, 3, "")
			data := []byte(fmt.Sprintf("%%PDF-1.7\nfinal copy %d of %s\n%%%%EOF\n", i, cp.AnonymousID))
			storeFinalPDF(t, env, cp, data)
			contents[cp.AnonymousID+".pdf"] = data
			good = append(good, cp)
		}
		missing := gradedCopy(t, env, ex, servertest.CopyOpts{Corrector: teacher}, 1, 1, "")
		b := storeFinalPDF(t, env, missing, []byte("%PDF-1.7\nthis file will be deleted\n"))
		if err := store.Delete(b.Sha256); err != nil {
			t.Fatal(err)
		}
		damaged := gradedCopy(t, env, ex, servertest.CopyOpts{Corrector: teacher}, 1, 1, "")
		b = storeFinalPDF(t, env, damaged, []byte("%PDF-1.7\nthis file will be damaged\n"))
		path, err := store.Path(b.Sha256)
		if err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(path, 0o600)
		if err := os.WriteFile(path, []byte("%PDF-1.7\nthis file was damaged\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env.NewCopy(ex, servertest.CopyOpts{Corrector: teacher}) // READY: not exported

		if code := env.ErrorCode(env.As(teacherTok).Do(exportJobQ, map[string]any{"e": ex.ID, "f": "PDF_ZIP"})); code != "FORBIDDEN" {
			t.Fatalf("teacher PDF_ZIP: %s", code)
		}
		var made struct{ ExportGrades struct{ ID, Kind string } }
		admin.MustDo(exportJobQ, map[string]any{"e": ex.ID, "f": "PDF_ZIP"}, &made)
		if made.ExportGrades.Kind != "EXPORT_PDFS" {
			t.Fatalf("PDF_ZIP job kind %s", made.ExportGrades.Kind)
		}
		j := waitExport(t, admin, made.ExportGrades.ID)
		var res struct {
			Filename, MediaType     string
			Copies, Written, Failed int
			Results                 []struct {
				CopyID, AnonymousID, Entry, Error string
				OK                                bool
			}
		}
		_ = json.Unmarshal(j.Result, &res)
		if j.State != "SUCCEEDED" || res.Copies != 5 || res.Written != 3 || res.Failed != 2 || len(res.Results) != 5 ||
			res.MediaType != "application/zip" || !strings.HasSuffix(res.Filename, ".zip") || j.DownloadURL == nil {
			t.Fatalf("PDF_ZIP job: %+v %s", j, j.Result)
		}
		failed := map[string]string{}
		for _, r := range res.Results {
			if !r.OK {
				failed[r.CopyID] = r.Error
			}
		}
		if len(failed) != 2 || !strings.Contains(failed[missing.ID], "missing") || !strings.Contains(failed[damaged.ID], "damaged") {
			t.Fatalf("per-copy failures: %+v", res.Results)
		}

		got := fetch(t, env, adminTok, *j.DownloadURL)
		if got.Status != http.StatusOK || got.Header.Get("Content-Type") != "application/zip" ||
			got.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("download: %d %v", got.Status, got.Header)
		}
		zr, err := zip.NewReader(bytes.NewReader(got.Body), int64(len(got.Body)))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(data, contents[f.Name]) {
				t.Fatalf("entry %s: %q", f.Name, data)
			}
		}
		var want []string
		for _, cp := range good {
			want = append(want, cp.AnonymousID+".pdf")
		}
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Fatalf("zip entries %v, want %v", names, want)
		}
		done := env.DB.Client.AuditLog.Query().Where(auditlog.Action("PDFS_EXPORTED")).AllX(env.Ctx())
		if len(done) != 1 || done[0].Target != ex.ID || fmt.Sprint(done[0].Metadata["copies"]) != "5" ||
			fmt.Sprint(done[0].Metadata["failed"]) != "2" || done[0].Metadata["kind"] != "EXPORT_PDFS" {
			t.Fatalf("completion audit: %+v", done)
		}
		if n := auditCount(t, env, "EXPORT_DOWNLOADED"); n != 1 {
			t.Fatalf("%d download audit rows", n)
		}
		if got := fetch(t, env, teacherTok, env.App.Services.Files.ExportURL(j.ID, res.Filename, teacher.ID)); got.Status != http.StatusForbidden {
			t.Fatalf("teacher downloads the ZIP: %d", got.Status)
		}

		// When no final PDF can be read, the job fails and says so.
		ex2 := env.NewExam(teacher)
		gradedCopy(t, env, ex2, servertest.CopyOpts{Corrector: teacher}, 1, 1, "") // no final PDF
		j2 := waitExport(t, admin, requestExport(t, admin, ex2.ID, "PDF_ZIP"))
		if j2.State != "FAILED" || j2.Error == nil || !strings.Contains(*j2.Error, "no final PDF") || j2.DownloadURL != nil {
			t.Fatalf("ZIP of unreadable copies: %+v", j2)
		}
		if n, _ := env.DB.Client.ExamCopy.Query().Where(examcopy.ExamID(ex2.ID), examcopy.StatusEQ(examcopy.StatusGRADED)).Count(env.Ctx()); n != 1 {
			t.Fatalf("the failed export changed copies")
		}
	})
}

// An export whose file expired (KORRIGO_EXPORT_RETENTION, swept by
// SweepStorage) keeps its job, with counts and file name and expired: true
// in the result; downloadUrl is null, and a link signed before the expiry
// answers 410 Gone, NOT_FOUND with reason EXPORT_EXPIRED. An export still
// within the retention downloads as before.
func TestExportExpires(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		env.StartJobs(func(c *jobs.Config) { c.ExportRetention = 7 * 24 * time.Hour })
		adminTok := env.Admin()
		admin := env.As(adminTok)
		teacher, _ := env.NewUser(user.RoleTEACHER, "Claire")
		ex := env.NewExam(teacher)
		gradedCopy(t, env, ex, servertest.CopyOpts{Corrector: teacher}, 1, 1, "")

		old := waitExport(t, admin, requestExport(t, admin, ex.ID, "CSV"))
		if old.State != "SUCCEEDED" || old.DownloadURL == nil {
			t.Fatalf("export: %+v", old)
		}
		// No final PDF: a failed job without a file, which the sweep leaves.
		if failed := waitExport(t, admin, requestExport(t, admin, ex.ID, "PDF_ZIP")); failed.State != "FAILED" {
			t.Fatalf("PDF_ZIP without final PDFs: %+v", failed)
		}
		fresh := waitExport(t, admin, requestExport(t, admin, ex.ID, "CSV"))
		var res struct{ SHA256, Filename string }
		_ = json.Unmarshal(old.Result, &res)

		// The first export finished eight days ago (a backdated row, not a
		// sleep); the last one, of the same bytes, today.
		eightDays := time.Now().Add(-8 * 24 * time.Hour)
		env.DB.Client.Job.UpdateOneID(old.ID).SetFinishedAt(eightDays).ExecX(env.Ctx())
		if err := env.App.Services.Jobs.SweepStorage(context.Background()); err != nil {
			t.Fatal(err)
		}

		got := waitExport(t, admin, old.ID)
		var r map[string]any
		_ = json.Unmarshal(got.Result, &r)
		if got.State != "SUCCEEDED" || got.DownloadURL != nil || r["expired"] != true || r["sha256"] != nil ||
			r["filename"] != res.Filename || r["rows"] != float64(1) {
			t.Fatalf("expired export: %+v %s", got, got.Result)
		}
		dl := fetch(t, env, adminTok, *old.DownloadURL)
		var body struct {
			Errors []struct {
				Message    string
				Extensions map[string]any
			}
		}
		_ = json.Unmarshal(dl.Body, &body)
		if dl.Status != http.StatusGone || len(body.Errors) != 1 || body.Errors[0].Extensions["code"] != "NOT_FOUND" ||
			body.Errors[0].Extensions["reason"] != "EXPORT_EXPIRED" || body.Errors[0].Extensions["expiredAt"] == nil ||
			!strings.Contains(body.Errors[0].Message, "expired") {
			t.Fatalf("download of an expired export: %d %s", dl.Status, dl.Body)
		}
		if n := auditCount(t, env, "EXPORT_DOWNLOADED"); n != 0 {
			t.Fatalf("%d download audit rows for an expired file", n)
		}
		if n := auditCount(t, env, "EXPORT_EXPIRED"); n != 1 {
			t.Fatalf("%d expiry audit rows", n)
		}

		// The export within the retention, which shares the expired one's
		// blob, still downloads.
		f := waitExport(t, admin, fresh.ID)
		var fres struct{ SHA256 string }
		_ = json.Unmarshal(f.Result, &fres)
		if f.DownloadURL == nil || fres.SHA256 != res.SHA256 {
			t.Fatalf("fresh export lost its link or does not share the blob: %+v", f)
		}
		if dl := fetch(t, env, adminTok, *f.DownloadURL); dl.Status != http.StatusOK {
			t.Fatalf("fresh export download: %d %s", dl.Status, dl.Body)
		}
		if n, _ := env.DB.Client.Job.Query().Count(env.Ctx()); n != 3 {
			t.Fatalf("%d jobs after the sweep, want the 3 kept", n)
		}
	})
}
