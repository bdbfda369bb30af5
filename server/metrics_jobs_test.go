package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/server/servertest"
)

// TestJobMetrics: after an importCopy job ran, /metrics shows it by kind and
// state, its attempt duration and the PDF children it (and the upload's
// validation) ran.
func TestJobMetrics(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		env.StartJobs()
		admin := env.Admin()
		waitJobSucceeded(t, env, admin, importCopy(t, env, admin, env.NewExam().ID))

		metrics := scrape(t, env.Server.URL+"/metrics", "")
		atLeast(t, metrics, `korrigo_jobs{kind="IMPORT_COPY",state="SUCCEEDED"}`, 1)
		atLeast(t, metrics, `korrigo_job_queue_depth`, 0)
		atLeast(t, metrics, `korrigo_job_duration_seconds_count{kind="IMPORT_COPY",outcome="succeeded"}`, 1)
		atLeast(t, metrics, `korrigo_pdf_render_duration_seconds_count{operation="import"}`, 1)
		atLeast(t, metrics, `korrigo_pdf_render_duration_seconds_count{operation="validate"}`, 1)
	})
}

// importCopy uploads testdata/copy-a4-4p.pdf to the exam through env's
// /graphql and returns the IMPORT_COPY job's id.
func importCopy(t *testing.T, env *servertest.Env, token, examID string) string {
	t.Helper()
	pdfBytes, err := os.ReadFile("../testdata/copy-a4-4p.pdf")
	if err != nil {
		t.Fatal(err)
	}
	var up struct{ ImportCopy struct{ ID string } }
	r := env.As(token).Upload(`mutation($e: ID!, $file: Upload!) { importCopy(examId: $e, file: $file) { id } }`,
		map[string]any{"e": examID}, "copy.pdf", pdfBytes)
	if len(r.Errors) != 0 || json.Unmarshal(r.Data, &up) != nil || up.ImportCopy.ID == "" {
		t.Fatalf("importCopy: %d %s %+v", r.Status, r.Data, r.Errors)
	}
	return up.ImportCopy.ID
}

// waitJobSucceeded polls the job until it ends (the test binary's timeout is
// the backstop) and fails the test unless it succeeded.
func waitJobSucceeded(t *testing.T, env *servertest.Env, token, id string) {
	t.Helper()
	for {
		var out struct{ Job struct{ State string } }
		env.As(token).MustDo(`query($id: ID!){ job(id: $id){ state } }`, map[string]any{"id": id}, &out)
		switch out.Job.State {
		case "SUCCEEDED":
			return
		case "FAILED", "CANCELLED":
			t.Fatalf("job %s ended %s", id, out.Job.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape GETs a /metrics URL (with the bearer token when not empty) and
// returns the exposition, failing the test on anything but 200.
func scrape(t *testing.T, url, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", url, resp.StatusCode, raw)
	}
	return string(raw)
}

// atLeast checks that the exposition has the series with a value ≥ min.
func atLeast(t *testing.T, metrics, series string, min float64) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(metrics)
	if m == nil {
		t.Errorf("/metrics lacks %s", series)
		return
	}
	if v, _ := strconv.ParseFloat(m[1], 64); v < min {
		t.Errorf("%s = %v, want ≥ %v", series, v, min)
	}
}
