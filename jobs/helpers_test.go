package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/jobs"
	"github.com/korrigo/korrigo/server/httpctx"
	"github.com/korrigo/korrigo/server/servertest"
)

const testdata = "../testdata/"

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatalf("testdata: %v", err)
	}
	return b
}

// newEnv is a server over d whose job workers run with fast retries.
func newEnv(t *testing.T, d *db.DB, mod ...func(*jobs.Config)) *servertest.Env {
	t.Helper()
	env := servertest.New(t, d)
	env.StartJobs(append([]func(*jobs.Config){func(c *jobs.Config) {
		c.Workers = 2
		c.RetryBase = 10 * time.Millisecond
	}}, mod...)...)
	return env
}

type gqlResp struct {
	Status int
	Data   json.RawMessage
	Errors []struct {
		Message    string
		Extensions map[string]any
	}
}

func (r gqlResp) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	s, _ := r.Errors[0].Extensions["code"].(string)
	return s
}

// upload sends a GraphQL multipart request (the spec's operations, map, file).
func upload(t testing.TB, env *servertest.Env, token string, headers map[string]string, query string,
	vars map[string]any, data []byte) gqlResp {
	t.Helper()
	c := env.As(token)
	for k, v := range headers {
		c.Header.Set(k, v)
	}
	r := c.Upload(query, vars, "scan.pdf", data)
	out := gqlResp{Status: r.Status, Data: r.Data}
	for _, e := range r.Errors {
		out.Errors = append(out.Errors, struct {
			Message    string
			Extensions map[string]any
		}{e.Message, e.Extensions})
	}
	return out
}

const uploadScanQ = `mutation($e: ID!, $file: Upload!){ uploadScan(examId: $e, file: $file){ id kind state } }`
const importCopyQ = `mutation($e: ID!, $file: Upload!, $s: ID){ importCopy(examId: $e, file: $file, studentId: $s){ id kind state } }`

type apiJob struct {
	ID       string
	Kind     string
	State    string
	Attempts int
	Error    *string
	Result   json.RawMessage
	Progress struct{ Done, Total int }
}

// submit uploads and returns the job id, failing on any error.
func submit(t testing.TB, env *servertest.Env, q string, vars map[string]any, data []byte) string {
	t.Helper()
	r := upload(t, env, env.Admin(), nil, q, vars, data)
	if len(r.Errors) > 0 {
		t.Fatalf("upload: %+v", r.Errors)
	}
	var d map[string]struct{ ID string }
	_ = json.Unmarshal(r.Data, &d)
	for _, j := range d {
		return j.ID
	}
	t.Fatal("no job in response")
	return ""
}

// waitJob polls job(id) until it ends (no wall-clock assertion: the bound only
// stops a hung test).
func waitJob(t testing.TB, env *servertest.Env, id string) apiJob {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var d struct{ Job apiJob }
		env.As(env.Admin()).MustDo(`query($id: ID!){ job(id: $id){ id kind state attempts error result progress { done total } } }`,
			map[string]any{"id": id}, &d)
		switch d.Job.State {
		case "SUCCEEDED", "FAILED", "CANCELLED":
			return d.Job
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s", id, d.Job.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// storedFiles lists the blob store's files (temp files included).
func storedFiles(t testing.TB, env *servertest.Env) []string {
	t.Helper()
	var out []string
	root := env.App.Services.Jobs.Store().Root()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), "probe-") {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func counts(t testing.TB, env *servertest.Env) string {
	t.Helper()
	c := env.DB.Client
	b, _ := c.Blob.Query().Count(env.Ctx())
	cp, _ := c.ExamCopy.Query().Count(env.Ctx())
	j, _ := c.Job.Query().Count(env.Ctx())
	return fmt.Sprintf("blobs=%d copies=%d jobs=%d files=%d", b, cp, j, len(storedFiles(t, env)))
}

func multipartBody(vars map[string]any, query string, data []byte) (io.Reader, string) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	vars["file"] = nil
	ops, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	_ = mw.WriteField("operations", string(ops))
	_ = mw.WriteField("map", `{"0":["variables.file"]}`)
	fw, _ := mw.CreateFormFile("0", "scan.pdf")
	_, _ = fw.Write(data)
	_ = mw.Close()
	return &body, mw.FormDataContentType()
}

func doRaw(t testing.TB, req *http.Request) gqlResp {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := gqlResp{Status: resp.StatusCode}
	_ = json.Unmarshal(raw, &out)
	return out
}

// uploadChunked sends the body without a Content-Length.
func uploadChunked(t testing.TB, env *servertest.Env, token string, data []byte) gqlResp {
	t.Helper()
	body, ct := multipartBody(map[string]any{"e": "x"}, uploadScanQ, data)
	req, _ := http.NewRequest(http.MethodPost, env.Server.URL+"/graphql", io.NopCloser(body))
	req.ContentLength = -1
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+token)
	return doRaw(t, req)
}

// uploadCookie authenticates with the session cookie and sends no preflight header.
func uploadCookie(t testing.TB, env *servertest.Env, token string, data []byte) gqlResp {
	t.Helper()
	body, ct := multipartBody(map[string]any{"e": "x"}, uploadScanQ, data)
	req, _ := http.NewRequest(http.MethodPost, env.Server.URL+"/graphql", body)
	req.Header.Set("Content-Type", ct)
	req.AddCookie(&http.Cookie{Name: httpctx.SessionCookie, Value: token})
	return doRaw(t, req)
}

// adminCtx is a context acting as the first admin, for direct service calls.
func adminCtx(t testing.TB, env *servertest.Env) context.Context {
	t.Helper()
	v, err := env.App.Services.Auth.Authenticate(context.Background(), env.Admin())
	if err != nil {
		t.Fatal(err)
	}
	return viewer.NewContext(context.Background(), v)
}
