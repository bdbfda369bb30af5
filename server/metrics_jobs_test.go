package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
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
		ex := env.NewExam()

		pdfBytes, err := os.ReadFile("../testdata/copy-a4-4p.pdf")
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		ops, _ := json.Marshal(map[string]any{
			"query":     `mutation($e: ID!, $f: Upload!) { importCopy(examId: $e, file: $f) { id } }`,
			"variables": map[string]any{"e": ex.ID, "f": nil},
		})
		_ = mw.WriteField("operations", string(ops))
		_ = mw.WriteField("map", `{"0":["variables.f"]}`)
		part, _ := mw.CreateFormFile("0", "copy.pdf")
		_, _ = part.Write(pdfBytes)
		_ = mw.Close()
		req, _ := http.NewRequest(http.MethodPost, env.Server.URL+"/graphql", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var up struct {
			Data   struct{ ImportCopy struct{ ID string } }
			Errors []any
		}
		err = json.NewDecoder(resp.Body).Decode(&up)
		resp.Body.Close()
		if err != nil || len(up.Errors) != 0 || up.Data.ImportCopy.ID == "" {
			t.Fatalf("importCopy: %v %+v", err, up)
		}

		// Poll until the job ends (the test binary's timeout is the backstop).
		for {
			var out struct{ Job struct{ State string } }
			env.As(admin).MustDo(`query($id: ID!){ job(id: $id){ state } }`, map[string]any{"id": up.Data.ImportCopy.ID}, &out)
			if out.Job.State == "SUCCEEDED" {
				break
			}
			if out.Job.State == "FAILED" || out.Job.State == "CANCELLED" {
				t.Fatalf("import job ended %s", out.Job.State)
			}
			time.Sleep(50 * time.Millisecond)
		}

		resp, err = http.Get(env.Server.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/metrics: %d %s", resp.StatusCode, raw)
		}
		metrics := string(raw)
		atLeast := func(series string, min float64) {
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
		atLeast(`korrigo_jobs{kind="IMPORT_COPY",state="SUCCEEDED"}`, 1)
		atLeast(`korrigo_job_queue_depth`, 0)
		atLeast(`korrigo_job_duration_seconds_count{kind="IMPORT_COPY",outcome="succeeded"}`, 1)
		atLeast(`korrigo_pdf_render_duration_seconds_count{operation="import"}`, 1)
		atLeast(`korrigo_pdf_render_duration_seconds_count{operation="validate"}`, 1)
	})
}
