package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/jobs"
	"github.com/korrigo/korrigo/pdf"
	"github.com/korrigo/korrigo/pdf/pdftest"
	"github.com/korrigo/korrigo/server/servertest"
)

type graded struct {
	copy    *ent.ExamCopy
	teacher string // token
	lock    string
}

// gradedCopy is a READY 4-page copy (its PDF stored directly) assigned to a
// new teacher, fully scored and annotated under the teacher's lease.
func gradedCopy(t *testing.T, env *servertest.Env) graded {
	t.Helper()
	tu, tok := env.NewUser(user.RoleTEACHER, "zoe")
	ex := env.NewExam(tu)
	data := readTestdata(t, "copy-a4-4p.pdf")
	ref, err := env.App.Services.Jobs.Store().Put(context.Background(), bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	b := env.DB.Client.Blob.Create().SetSha256(ref.SHA256).SetSize(ref.Size).SetMediaType("application/pdf").
		SetPages(4).SaveX(env.Ctx())
	c := env.NewCopy(ex, servertest.CopyOpts{Corrector: tu, Pages: 4})
	c = c.Update().SetSourceBlobID(b.ID).SaveX(env.Ctx())
	cl := env.As(tok)
	var lk struct{ AcquireCopyLock struct{ Token string } }
	cl.MustDo(`mutation($c: ID!){ acquireCopyLock(copyId: $c){ token } }`, map[string]any{"c": c.ID}, &lk)
	tokV := lk.AcquireCopyLock.Token
	for q, p := range map[string]float64{"q1": 3, "q2a": 4.5} {
		cl.MustDo(`mutation($c: ID!, $t: String!, $q: String!, $p: Float){ setQuestionScore(copyId: $c, lockToken: $t, questionId: $q, points: $p, remark: "Très bien, Élyes") { id } }`,
			map[string]any{"c": c.ID, "t": tokV, "q": q, "p": p}, nil)
	}
	for i, kind := range []string{"COMMENT", "ERROR", "HIGHLIGHT", "BONUS"} {
		cl.MustDo(`mutation($c: ID!, $t: String!, $in: AnnotationInput!){ createAnnotation(copyId: $c, lockToken: $t, input: $in){ id } }`,
			map[string]any{"c": c.ID, "t": tokV, "in": map[string]any{"pageIndex": i, "x": 0.1, "y": 0.5, "w": 0.3, "h": 0.1,
				"kind": kind, "text": "Zoé : très bien", "points": 0.5}}, nil)
	}
	cl.MustDo(`mutation($c: ID!, $t: String!){ setAppreciation(copyId: $c, lockToken: $t, text: "Travail sérieux, Lefèvre approuve."){ id } }`,
		map[string]any{"c": c.ID, "t": tokV}, nil)
	return graded{copy: c, teacher: tok, lock: tokV}
}

func finalize(t testing.TB, env *servertest.Env, g graded) string {
	t.Helper()
	var d struct{ FinalizeCopy struct{ ID string } }
	env.As(g.teacher).MustDo(`mutation($c: ID!, $t: String!){ finalizeCopy(copyId: $c, lockToken: $t){ id } }`,
		map[string]any{"c": g.copy.ID, "t": g.lock}, &d)
	return d.FinalizeCopy.ID
}

// relock takes the lease again (after GRADING_FAILED) for another finalize.
func relock(t testing.TB, env *servertest.Env, g *graded) {
	t.Helper()
	var lk struct{ AcquireCopyLock struct{ Token string } }
	env.As(g.teacher).MustDo(`mutation($c: ID!){ acquireCopyLock(copyId: $c){ token } }`, map[string]any{"c": g.copy.ID}, &lk)
	g.lock = lk.AcquireCopyLock.Token
}

func reload(t testing.TB, env *servertest.Env, c *ent.ExamCopy) *ent.ExamCopy {
	t.Helper()
	c, err := env.DB.Client.ExamCopy.Get(env.Ctx(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// noOrphans: every stored file has a Blob row, and no temp file is left.
func noOrphans(t testing.TB, env *servertest.Env) {
	t.Helper()
	rows := map[string]bool{}
	for _, b := range env.DB.Client.Blob.Query().AllX(env.Ctx()) {
		rows[b.Sha256] = true
	}
	for _, f := range storedFiles(t, env) {
		if !rows[filepath.Base(f)] {
			t.Errorf("orphan file %s", f)
		}
	}
}

func get(t testing.TB, env *servertest.Env, token, path string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, env.Server.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestFinalizeRendersOnePDF(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := newEnv(t, d)
		g := gradedCopy(t, env)
		// 20 concurrent finalizations: one job.
		var wg sync.WaitGroup
		jobIDs := make([]string, 20)
		for i := range jobIDs {
			wg.Add(1)
			go func() { defer wg.Done(); jobIDs[i] = finalize(t, env, g) }()
		}
		wg.Wait()
		for _, id := range jobIDs {
			if id != jobIDs[0] {
				t.Fatalf("different jobs: %v", jobIDs)
			}
		}
		j := waitJob(t, env, jobIDs[0])
		if j.State != "SUCCEEDED" {
			t.Fatalf("job %+v", j)
		}
		c := reload(t, env, g.copy)
		if c.Status != examcopy.StatusGRADED || c.FinalBlobID == nil {
			t.Fatalf("copy %s final %v", c.Status, c.FinalBlobID)
		}
		if n := len(storedFiles(t, env)); n != 2 {
			t.Errorf("%d files stored, want the source and one final PDF", n)
		}
		noOrphans(t, env)

		var q struct{ Node struct{ FinalPdfUrl *string } }
		env.As(g.teacher).MustDo(`query($id: ID!){ node(id: $id){ ... on Copy { finalPdfUrl } } }`, map[string]any{"id": c.ID}, &q)
		if q.Node.FinalPdfUrl == nil {
			t.Fatal("no finalPdfUrl")
		}
		resp, body := get(t, env, g.teacher, *q.Node.FinalPdfUrl)
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/pdf" {
			t.Fatalf("download: %d %v", resp.StatusCode, resp.Header)
		}
		texts := pdftest.VisibleTexts(t, body)
		if len(texts) != 5 {
			t.Fatalf("%d pages, want 4 + summary", len(texts))
		}
		summary := texts[4]
		for _, want := range []string{c.AnonymousID, "15,00 / 20", "7,5 / 10", "Exercice 1", "3", "4,5", "Très bien, Élyes", "Lefèvre"} {
			if !strings.Contains(summary, want) {
				t.Errorf("summary page lacks %q: %q", want, summary)
			}
		}
		if !strings.Contains(texts[0], "Zoé : très bien") {
			t.Errorf("page 1 lacks its annotation: %q", texts[0])
		}
		for name, emb := range pdftest.EmbeddedFonts(t, body, 4) {
			if !emb {
				t.Errorf("summary font %s is not embedded", name)
			}
		}
		// Another teacher cannot use the link, nor get one.
		_, other := env.NewUser(user.RoleTEACHER, "autre")
		if resp, _ := get(t, env, other, *q.Node.FinalPdfUrl); resp.StatusCode != http.StatusForbidden {
			t.Errorf("other teacher: %d", resp.StatusCode)
		}
		if resp, _ := get(t, env, g.teacher, strings.Replace(*q.Node.FinalPdfUrl, "sig=", "sig=x", 1)); resp.StatusCode != http.StatusForbidden {
			t.Errorf("forged signature: %d", resp.StatusCode)
		}
	})
}

func TestFinalizeFailuresRetryThenFail(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		var panics, failFirst atomic.Bool
		env := newEnv(t, d, func(c *jobs.Config) {
			c.Hooks = &jobs.Hooks{
				BeforeWork: func(ctx context.Context, kind string, attempt int) {
					if panics.Load() {
						panic("test hook: the worker exploded")
					}
				},
				AfterPDF: func(ctx context.Context, kind string, attempt int) error {
					if failFirst.Load() && attempt == 1 {
						return errors.New("test hook: disk hiccup")
					}
					return nil
				},
			}
		})
		g := gradedCopy(t, env)

		// A job that panics on every attempt: 3 attempts, then GRADING_FAILED.
		panics.Store(true)
		j := waitJob(t, env, finalize(t, env, g))
		panics.Store(false)
		c := reload(t, env, g.copy)
		if j.State != "FAILED" || j.Attempts != 3 || c.Status != examcopy.StatusGRADING_FAILED ||
			c.GradingError == nil || *c.GradingError == "" {
			t.Fatalf("after panics: job %+v, copy %s %v", j, c.Status, c.GradingError)
		}
		noOrphans(t, env)

		// A transient failure after the PDF was rendered: retried, then GRADED.
		failFirst.Store(true)
		relock(t, env, &g)
		j = waitJob(t, env, finalize(t, env, g))
		c = reload(t, env, g.copy)
		if j.State != "SUCCEEDED" || j.Attempts != 2 || c.Status != examcopy.StatusGRADED || c.GradingError != nil {
			t.Fatalf("after a transient failure: job %+v, copy %s %v", j, c.Status, c.GradingError)
		}
		noOrphans(t, env)
	})
}

func TestFinalizeChildTimeoutAndKill(t *testing.T) {
	for name, runner := range map[string]*pdf.Runner{
		// The PDF child exceeds its time limit.
		"timeout": {Timeout: 30 * time.Millisecond},
		// The PDF child is killed mid-job (SIGKILL).
		"killed": {Path: "/bin/sh", Args: []string{"-c", "kill -9 $$", "sh"}},
	} {
		t.Run(name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, d *db.DB) {
				env := newEnv(t, d, func(c *jobs.Config) { c.Runner = runner })
				g := gradedCopy(t, env)
				j := waitJob(t, env, finalize(t, env, g))
				c := reload(t, env, g.copy)
				if j.State != "FAILED" || j.Attempts != 3 || c.Status != examcopy.StatusGRADING_FAILED || c.GradingError == nil {
					t.Fatalf("job %+v, copy %s", j, c.Status)
				}
				want := map[string]string{"timeout": "timed out", "killed": "killed"}[name]
				if !strings.Contains(*c.GradingError, want) {
					t.Errorf("gradingError %q lacks %q", *c.GradingError, want)
				}
				noOrphans(t, env)
				var me struct{ Me struct{ Role string } }
				env.As(env.Admin()).MustDo(`{ me { role } }`, nil, &me)
			})
		})
	}
}

// A worker dies mid-job: River's row stays running, ours RUNNING, the copy
// GRADING_IN_PROGRESS, a temp file and an unrecorded blob file are left.
// `korrigo recover -workers-stopped` resets all of it, and the copy can be
// finalized again.
func TestRecoverAfterWorkerDeath(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := newEnv(t, d, func(c *jobs.Config) { c.Workers = 0 }) // nobody runs the job
		g := gradedCopy(t, env)
		jobID := finalize(t, env, g)
		j := env.DB.Client.Job.GetX(env.Ctx(), jobID)
		if j.RiverJobID == nil {
			t.Fatal("job not handed to River")
		}
		q := "UPDATE river_job SET state = 'running', attempt = 1 WHERE id = ?"
		if d.Dialect == "postgres" {
			q = "UPDATE river_job SET state = 'running', attempt = 1, attempted_at = now() WHERE id = $1"
		}
		if _, err := d.SQL.Exec(q, *j.RiverJobID); err != nil {
			t.Fatal(err)
		}
		j.Update().SetState("RUNNING").SetUpdatedAt(time.Now().Add(-time.Hour).UTC()).ExecX(env.Ctx())
		store := env.App.Services.Jobs.Store()
		if err := os.WriteFile(filepath.Join(store.Root(), ".tmp", "put-crashed"), []byte("%PDF-partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Put(context.Background(), strings.NewReader("renamed but never recorded"), 100); err != nil {
			t.Fatal(err)
		}
		rep, err := env.App.Services.Jobs.Recover(context.Background(), jobs.RecoverOptions{WorkersStopped: true}, 0)
		if err != nil {
			t.Fatal(err)
		}
		c := reload(t, env, g.copy)
		j = env.DB.Client.Job.GetX(env.Ctx(), jobID)
		if c.Status != examcopy.StatusGRADING_FAILED || j.State != "FAILED" || j.ActiveKey != nil {
			t.Fatalf("after recover: copy %s, job %s key %v (report %+v)", c.Status, j.State, j.ActiveKey, rep)
		}
		if rep.TempFilesRemove != 1 || rep.BlobsRemoved != 1 {
			t.Errorf("report %+v", rep)
		}
		noOrphans(t, env)
		if n := len(storedFiles(t, env)); n != 1 {
			t.Errorf("%d files, want the source only", n)
		}

		// Workers come back: the old River job finds its job closed; a new
		// finalization succeeds.
		js := env.App.Services.Jobs
		if err := js.Reconfigure(func(c *jobs.Config) { c.Workers = 2 }); err != nil {
			t.Fatal(err)
		}
		if err := js.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		relock(t, env, &g)
		if j := waitJob(t, env, finalize(t, env, g)); j.State != "SUCCEEDED" {
			t.Fatalf("finalize after recover: %+v", j)
		}
		if c := reload(t, env, g.copy); c.Status != examcopy.StatusGRADED {
			t.Fatalf("copy %s", c.Status)
		}
	})
}
