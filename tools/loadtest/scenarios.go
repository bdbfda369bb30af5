package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

const (
	qAcquire  = `mutation($c: ID!, $ttl: Int) { acquireCopyLock(copyId: $c, ttlSeconds: $ttl) { token expiresAt } }`
	qRelease  = `mutation($c: ID!, $t: String!) { releaseCopyLock(copyId: $c, token: $t) }`
	qSave     = `mutation($c: ID!, $cl: String!, $p: JSON!) { saveDraft(copyId: $c, clientId: $cl, payload: $p) { version } }`
	qAnnotate = `mutation($c: ID!, $t: String!, $in: AnnotationInput!) { createAnnotation(copyId: $c, lockToken: $t, input: $in) { id version } }`
	qScore    = `mutation($c: ID!, $t: String!, $q: String!, $p: Float) { setQuestionScore(copyId: $c, lockToken: $t, questionId: $q, points: $p) { id } }`
	qFinalize = `mutation($c: ID!, $t: String!) { finalizeCopy(copyId: $c, lockToken: $t) { id state } }`
	qMyDraft  = `query($c: ID!) { node(id: $c) { ... on Copy { myDraft { version payload } } } }`
	qCopies   = `query($ids: [ID!]!) { nodes(ids: $ids) { ... on Copy { id status finalPdfUrl } } }`
	qExamJobs = `query($e: ID!) { node(id: $e) { ... on Exam { jobs(first: 100) { id kind state copy { id } }
	  progress { total staging ready gradingInProgress graded gradingFailed } } } }`
	qPage = `query($e: ID!, $after: Cursor, $n: Int) { copies(first: $n, after: $after, where: {hasExamWith: [{id: $e}]}) {
	  pageInfo { hasNextPage endCursor } edges { node { id anonymousId status total grade20 scores { questionId points } } } } }`
)

var expectedCodes = []string{"LOCKED", "VERSION_CONFLICT"}

// Result is one scenario's measurements and invariants.
type Result struct {
	Name    string         `json:"name"`
	Summary []Summary      `json:"measurements"`
	Checks  []Check        `json:"invariants"`
	Notes   []string       `json:"notes,omitempty"`
	Extra   map[string]any `json:"extra,omitempty"`
}

func rec(name string) *Recorder { return NewRecorder(name, expectedCodes...) }

// barrier releases every goroutine of a burst at once.
type barrier struct{ ch chan struct{} }

func newBarrier() *barrier   { return &barrier{ch: make(chan struct{})} }
func (b *barrier) wait()     { <-b.ch }
func (b *barrier) release()  { close(b.ch) }
func text2KB(seq int) string { return fmt.Sprintf("%04d ", seq) + strings.Repeat("é", 1000) }
func jsonNum(v any) int      { f, _ := v.(float64); return int(f) }
func payload(seq int) any    { return map[string]any{"seq": seq, "text": text2KB(seq)} }

// S1: concurrent autosaves. Every (teacher, copy) pair is one browser tab
// saving `saves` times in sequence; all tabs start together.
func scenarioAutosave(ctx context.Context, ds *Dataset, saves int) Result {
	type pair struct {
		t  *Teacher
		c  CopyRef
		cl string
	}
	var pairs []pair
	for _, t := range ds.Teachers {
		for _, c := range t.Copies {
			pairs = append(pairs, pair{t, c, fmt.Sprintf("tab-%d", len(pairs))})
		}
	}
	r := rec("saveDraft (2 KB)")
	out := make([]DraftOutcome, len(pairs))
	b := newBarrier()
	var wg sync.WaitGroup
	for i, p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.wait()
			o := DraftOutcome{CopyID: p.c.ID}
			for k := 1; k <= saves; k++ {
				if p.t.Client.Timed(ctx, r, qSave, map[string]any{"c": p.c.ID, "cl": p.cl, "p": payload(k)}, nil) == nil {
					o.Saved++
					o.LastSeq = k
				}
			}
			out[i] = o
		}()
	}
	r.Restart()
	b.release()
	wg.Wait()
	r.Stop()
	_ = parallel(len(pairs), 16, func(i int) error {
		var d struct {
			Node struct {
				MyDraft *struct {
					Version int
					Payload map[string]any
				}
			}
		}
		if err := pairs[i].t.Client.Do(ctx, qMyDraft, map[string]any{"c": pairs[i].c.ID}, &d); err == nil && d.Node.MyDraft != nil {
			out[i].GotVersion, out[i].GotSeq = d.Node.MyDraft.Version, jsonNum(d.Node.MyDraft.Payload["seq"])
		}
		return nil
	})
	return Result{Name: fmt.Sprintf("1. %d concurrent autosaves (×%d each)", len(pairs), saves),
		Summary: []Summary{r.Summary()}, Checks: []Check{CheckDrafts(out)}}
}

// readFinalized reads copies and their exam's FINALIZE_COPY jobs.
func readFinalized(ctx context.Context, admin *Client, exam string, copies []string) ([]CopyOutcome, map[string]any, error) {
	var ej struct {
		Node struct {
			Jobs     []job
			Progress map[string]int
		}
	}
	if err := admin.Do(ctx, qExamJobs, map[string]any{"e": exam}, &ej); err != nil {
		return nil, nil, err
	}
	perCopy := map[string]int{}
	for _, j := range ej.Node.Jobs {
		if j.Kind == "FINALIZE_COPY" && j.Copy != nil {
			perCopy[j.Copy.ID]++
		}
	}
	var out []CopyOutcome
	for i := 0; i < len(copies); i += 100 {
		var r struct {
			Nodes []struct {
				ID, Status  string
				FinalPdfUrl *string
			}
		}
		if err := admin.Do(ctx, qCopies, map[string]any{"ids": copies[i:min(i+100, len(copies))]}, &r); err != nil {
			return nil, nil, err
		}
		for _, n := range r.Nodes {
			out = append(out, CopyOutcome{ID: n.ID, Status: n.Status, FinalPDF: n.FinalPdfUrl != nil && *n.FinalPdfUrl != "",
				FinalizeJob: perCopy[n.ID]})
		}
	}
	prog := map[string]any{}
	for k, v := range ej.Node.Progress {
		prog[k] = v
	}
	return out, prog, nil
}

// lockAndScore takes the lease of a copy and scores every question (setup of S2).
func lockAndScore(ctx context.Context, c *Client, copyID string) (string, error) {
	var l struct{ AcquireCopyLock struct{ Token string } }
	if err := c.Do(ctx, qAcquire, map[string]any{"c": copyID, "ttl": 900}, &l); err != nil {
		return "", fmt.Errorf("acquire: %w", err)
	}
	for i, q := range leaves {
		if err := c.Do(ctx, qScore, map[string]any{"c": copyID, "t": l.AcquireCopyLock.Token, "q": q, "p": float64(i % 5)}, nil); err != nil {
			return "", fmt.Errorf("score: %w", err)
		}
	}
	return l.AcquireCopyLock.Token, nil
}

// S2: 20 concurrent finalizations of distinct copies, and 20 of the same copy,
// all at once.
func scenarioFinalize(ctx context.Context, ds *Dataset, n int) Result {
	res := Result{Name: fmt.Sprintf("2. %d concurrent finalizeCopy of distinct copies + %d of one copy", n, n)}
	tokens := make([]string, n+1)
	if err := parallel(n+1, 8, func(i int) error {
		var err error
		tokens[i], err = lockAndScore(ctx, ds.Admin, ds.CopiesB[i])
		return err
	}); err != nil {
		res.Checks = append(res.Checks, Check{Name: "setup", Detail: err.Error()})
		return res
	}
	distinct, same := rec("finalizeCopy, distinct copies"), rec("finalizeCopy, same copy")
	jobDistinct, jobSame := make([]string, n), make([]string, n)
	b := newBarrier()
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.wait()
			var r struct{ FinalizeCopy struct{ ID string } }
			if i < n {
				if ds.Admin.Timed(ctx, distinct, qFinalize, map[string]any{"c": ds.CopiesB[i], "t": tokens[i]}, &r) == nil {
					jobDistinct[i] = r.FinalizeCopy.ID
				}
			} else if ds.Admin.Timed(ctx, same, qFinalize, map[string]any{"c": ds.CopiesB[n], "t": tokens[n]}, &r) == nil {
				jobSame[i-n] = r.FinalizeCopy.ID
			}
		}()
	}
	distinct.Restart()
	same.Restart()
	b.release()
	wg.Wait()
	distinct.Stop()
	same.Stop()
	all := append(nonEmpty(jobDistinct), nonEmpty(jobSame)...)
	t0 := time.Now()
	_, err := waitJobs(ctx, ds.Admin, all, 5*time.Minute)
	res.Notes = append(res.Notes, fmt.Sprintf("finalize jobs drained in %.1f s after the burst", time.Since(t0).Seconds()))
	if err != nil {
		res.Notes = append(res.Notes, err.Error())
	}
	res.Summary = []Summary{distinct.Summary(), same.Summary()}
	res.Checks = append(res.Checks, CheckSameJob(jobSame))
	copies, prog, err := readFinalized(ctx, ds.Admin, ds.ExamB, ds.CopiesB[:n+1])
	if err != nil {
		res.Checks = append(res.Checks, Check{Name: "read back", Detail: err.Error()})
		return res
	}
	res.Checks = append(res.Checks, CheckFinalized(copies)...)
	res.Extra = map[string]any{"exam_progress": prog}
	return res
}

// S3: concurrent scan uploads (one exam each), then one 400-page A4 split.
func scenarioScans(ctx context.Context, cfg *Config, ds *Dataset) Result {
	res := Result{Name: fmt.Sprintf("3. %d concurrent uploadScan (6-booklet A3 class scan), %d concurrent importCopy, one %d-page A4 split", cfg.Scans, cfg.Scans, cfg.SplitPages)}
	exams := make([]string, cfg.Scans)
	for i := range exams {
		var err error
		if exams[i], err = createExam(ctx, ds.Admin, fmt.Sprintf("Load C%d — scans", i+1), false); err != nil {
			res.Checks = append(res.Checks, Check{Name: "setup", Detail: err.Error()})
			return res
		}
	}
	up, split := rec("uploadScan request"), rec("SPLIT_SCAN job, upload→SUCCEEDED")
	jobIDs := make([]string, cfg.Scans)
	started := make([]time.Time, cfg.Scans)
	b := newBarrier()
	var wg sync.WaitGroup
	file, _ := os.ReadFile(cfg.pdf("class-a3-6students.pdf"))
	for i := range cfg.Scans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.wait()
			var r struct{ UploadScan struct{ ID string } }
			started[i] = time.Now()
			err := ds.Admin.UploadBytes(ctx, qUploadScan, map[string]any{"e": exams[i]}, "class.pdf", file, &r)
			up.Add(time.Since(started[i]), codeOf(err))
			jobIDs[i] = r.UploadScan.ID
		}()
	}
	up.Restart()
	split.Restart()
	b.release()
	wg.Wait()
	up.Stop()
	// Poll each job on its own so its completion time is seen within ~100 ms.
	_ = parallel(cfg.Scans, cfg.Scans, func(i int) error {
		if jobIDs[i] == "" {
			return nil
		}
		j, err := waitOne(ctx, ds.Admin, jobIDs[i], 5*time.Minute)
		code := ""
		if err != nil {
			code = "TIMEOUT"
		} else if j.State != "SUCCEEDED" {
			code = "JOB_" + j.State
		}
		split.Add(time.Since(started[i]), code)
		return nil
	})
	split.Stop()
	res.Summary = []Summary{up.Summary(), split.Summary()}
	var problems []string
	for i, e := range exams {
		var ej struct {
			Node struct{ Progress map[string]int }
		}
		if err := ds.Admin.Do(ctx, qExamJobs, map[string]any{"e": e}, &ej); err != nil {
			problems = append(problems, err.Error())
		} else if got := ej.Node.Progress["total"]; got != 6 {
			problems = append(problems, fmt.Sprintf("exam C%d has %d copies, want 6", i+1, got))
		}
	}
	res.Checks = append(res.Checks, check("each upload produced its 6 copies", problems, fmt.Sprintf("%d exams × 6 copies", len(exams))))

	// Concurrent importCopy (one student's A4 PDF each) into one exam.
	if exam, err := createExam(ctx, ds.Admin, "Load I — imports", true); err == nil {
		ir, jr := rec("importCopy request"), rec(fmt.Sprintf("all %d IMPORT_COPY jobs, first request→last SUCCEEDED", cfg.Scans))
		if _, err := importCopies(ctx, ds.Admin, ir, jr, exam, cfg.pdf("copy-a4-8p.pdf"), cfg.Scans); err != nil {
			res.Notes = append(res.Notes, "importCopy: "+err.Error())
		}
		res.Summary = append(res.Summary, ir.Summary(), jr.Summary())
	}

	// The 400-page A4 split.
	big, err := buildPages(cfg.pdf("copy-a4-8p.pdf"), cfg.SplitPages)
	if err != nil {
		res.Notes = append(res.Notes, "build big scan: "+err.Error())
		return res
	}
	exam, err := createExam(ctx, ds.Admin, "Load D — big scan", false)
	if err != nil {
		res.Notes = append(res.Notes, err.Error())
		return res
	}
	bigRec := rec(fmt.Sprintf("%d-page A4 scan, upload→SUCCEEDED", cfg.SplitPages))
	t0 := time.Now()
	var r struct{ UploadScan struct{ ID string } }
	err = ds.Admin.UploadBytes(ctx, qUploadScan, map[string]any{"e": exam}, "big.pdf", big, &r)
	uploadDone := time.Since(t0)
	code := codeOf(err)
	if err == nil {
		j, werr := waitOne(ctx, ds.Admin, r.UploadScan.ID, 5*time.Minute)
		switch {
		case werr != nil:
			code = "TIMEOUT"
		case j.State != "SUCCEEDED":
			code = "JOB_" + j.State
			res.Notes = append(res.Notes, "big split: "+deref(j.Error))
		}
	}
	bigRec.Add(time.Since(t0), code)
	res.Summary = append(res.Summary, bigRec.Summary())
	var ej struct {
		Node struct{ Progress map[string]int }
	}
	_ = ds.Admin.Do(ctx, qExamJobs, map[string]any{"e": exam}, &ej)
	want := cfg.SplitPages / 4
	var p []string
	if got := ej.Node.Progress["total"]; got != want {
		p = append(p, fmt.Sprintf("big scan gave %d copies, want %d", got, want))
	}
	res.Checks = append(res.Checks, check(fmt.Sprintf("%d-page scan → %d copies", cfg.SplitPages, want), p, "ok"))
	res.Extra = map[string]any{"big_scan_bytes": len(big), "big_scan_upload_s": uploadDone.Seconds(),
		"big_scan_total_s": bigRec.Summary().MaxMs / 1000}
	return res
}

func waitOne(ctx context.Context, c *Client, id string, timeout time.Duration) (job, error) {
	deadline := time.Now().Add(timeout)
	for {
		var r struct{ Nodes []*job }
		if err := c.Do(ctx, qJobs, map[string]any{"ids": []string{id}}, &r); err == nil && len(r.Nodes) == 1 && r.Nodes[0] != nil && terminal(r.Nodes[0].State) {
			return *r.Nodes[0], nil
		}
		if time.Now().After(deadline) {
			return job{}, fmt.Errorf("job %s not done after %s", id, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// buildPages concatenates a PDF with itself up to n pages (n a multiple of its page count).
func buildPages(path string, n int) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	conf := model.NewDefaultConfiguration()
	pages, err := api.PageCount(bytes.NewReader(raw), conf)
	if err != nil {
		return nil, err
	}
	rs := make([]io.ReadSeeker, 0, n/pages)
	for range n / pages {
		rs = append(rs, bytes.NewReader(raw))
	}
	var out bytes.Buffer
	if err := api.MergeRaw(rs, &out, false, conf); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// S4: teachers grade their copies end to end while subscribers watch the exam.
func scenarioGrading(ctx context.Context, cfg *Config, ds *Dataset, profile func(string, time.Duration)) Result {
	res := Result{Name: fmt.Sprintf("4. %d teachers × %d copies graded end to end, %d WebSocket subscribers",
		len(ds.Teachers), cfg.CopiesPerTeacher, cfg.Subscribers)}
	tokens := []string{ds.Admin.Token}
	for _, t := range ds.Teachers {
		tokens = append(tokens, t.Token)
	}
	pool, connect, err := connectSubscribers(ctx, cfg.wsURL(), tokens, ds.ExamA, cfg.Subscribers)
	res.Summary = append(res.Summary, connect.Summary())
	if err != nil {
		res.Checks = append(res.Checks, Check{Name: "subscribers connected", Detail: err.Error()})
		return res
	}
	defer pool.Close()
	ops := map[string]*Recorder{}
	for _, n := range []string{"acquireCopyLock", "createAnnotation", "setQuestionScore", "finalizeCopy"} {
		ops[n] = rec(n)
	}
	e2e := rec("one copy, lock→finalize (10 annotations, 5 scores)")
	var mu sync.Mutex
	var finalized []string
	var jobIDs []string
	var mustSee []LockKey
	b := newBarrier()
	var wg sync.WaitGroup
	for _, t := range ds.Teachers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.wait()
			for _, c := range t.Copies[:min(cfg.CopiesPerTeacher, len(t.Copies))] {
				t0 := time.Now()
				code := gradeCopy(ctx, t.Client, c, ops, func(jobID string) {
					mu.Lock()
					finalized, jobIDs = append(finalized, c.ID), append(jobIDs, jobID)
					mustSee = append(mustSee, LockKey{CopyID: c.ID, Kind: "ACQUIRED"})
					mu.Unlock()
				})
				e2e.Add(time.Since(t0), code)
			}
		}()
	}
	for _, r := range ops {
		r.Restart()
	}
	e2e.Restart()
	pool.Latency.Restart()
	if profile != nil {
		go profile("grading", time.Duration(cfg.ProfileSeconds)*time.Second)
	}
	b.release()
	wg.Wait()
	for _, r := range ops {
		r.Stop()
	}
	e2e.Stop()
	// Read back even when the time bound interrupts the run (then within 20 s):
	// the invariants of what was done hold or not.
	if ctx.Err() != nil {
		res.Notes = append(res.Notes, "interrupted by the time bound during grading")
	}
	parent := ctx
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	defer cancel()
	stopAfter := context.AfterFunc(parent, func() {
		time.AfterFunc(20*time.Second, cancel)
	})
	defer stopAfter()
	t0 := time.Now()
	if _, err := waitJobs(ctx, ds.Admin, jobIDs, 5*time.Minute); err != nil {
		res.Notes = append(res.Notes, err.Error())
	}
	res.Notes = append(res.Notes, fmt.Sprintf("%d FINALIZE_COPY jobs drained %.1f s after the last finalizeCopy", len(jobIDs), time.Since(t0).Seconds()))
	pool.Settle(2*time.Second, 30*time.Second)
	pool.Latency.Stop()
	res.Summary = append(res.Summary, e2e.Summary())
	for _, n := range []string{"acquireCopyLock", "createAnnotation", "setQuestionScore", "finalizeCopy"} {
		res.Summary = append(res.Summary, ops[n].Summary())
	}
	res.Summary = append(res.Summary, pool.Latency.Summary())
	copies, prog, err := readFinalized(ctx, ds.Admin, ds.ExamA, finalized)
	if err != nil {
		res.Checks = append(res.Checks, Check{Name: "read back", Detail: err.Error()})
	} else {
		res.Checks = append(res.Checks, CheckFinalized(copies)...)
	}
	want := len(ds.Teachers) * cfg.CopiesPerTeacher
	if len(finalized) != want {
		res.Checks = append(res.Checks, Check{Name: "every teacher finalized every copy",
			Detail: fmt.Sprintf("%d of %d copies finalized", len(finalized), want)})
	}
	res.Checks = append(res.Checks, CheckSubscribersResync(mustSee, pool.Snapshot(), pool.Resynced()))
	res.Extra = map[string]any{"exam_progress": prog, "subscribers_resynced": pool.ResyncCount(),
		"subscribers_closed_early": pool.CloseReasons(), "events_received": pool.Received()}
	return res
}

// gradeCopy: lock, 10 annotations, every score, finalize; returns the first error code.
func gradeCopy(ctx context.Context, c *Client, cp CopyRef, ops map[string]*Recorder, done func(jobID string)) string {
	var l struct{ AcquireCopyLock struct{ Token string } }
	if err := c.Timed(ctx, ops["acquireCopyLock"], qAcquire, map[string]any{"c": cp.ID, "ttl": 300}, &l); err != nil {
		return codeOf(err)
	}
	tok := l.AcquireCopyLock.Token
	pages := max(1, cp.PageCount)
	for k := range 10 {
		in := map[string]any{"pageIndex": k % pages, "x": 0.1, "y": 0.05 + 0.08*float64(k), "w": 0.3, "h": 0.05,
			"kind": []string{"COMMENT", "HIGHLIGHT", "ERROR", "BONUS"}[k%4], "text": fmt.Sprintf("Remarque %d : raisonnement à préciser", k)}
		if err := c.Timed(ctx, ops["createAnnotation"], qAnnotate, map[string]any{"c": cp.ID, "t": tok, "in": in}, nil); err != nil {
			return codeOf(err)
		}
	}
	for i, q := range leaves {
		if err := c.Timed(ctx, ops["setQuestionScore"], qScore, map[string]any{"c": cp.ID, "t": tok, "q": q, "p": float64(i%4) + 0.5}, nil); err != nil {
			return codeOf(err)
		}
	}
	var f struct{ FinalizeCopy struct{ ID string } }
	if err := c.Timed(ctx, ops["finalizeCopy"], qFinalize, map[string]any{"c": cp.ID, "t": tok}, &f); err != nil {
		return codeOf(err)
	}
	done(f.FinalizeCopy.ID)
	return ""
}

// S5: an integrator pages through every copy of a big exam with its grades.
func scenarioIntegrator(ctx context.Context, cfg *Config, ds *Dataset) (Result, string, *Client) {
	res := Result{Name: fmt.Sprintf("5. integrator (API token) pages through %d copies with grades", cfg.IntegratorCopies)}
	exam, err := createExam(ctx, ds.Admin, "Load E — integrator", true)
	if err != nil {
		res.Checks = append(res.Checks, Check{Name: "setup", Detail: err.Error()})
		return res, "", nil
	}
	t0 := time.Now()
	if err := seedDirect(ctx, cfg.DatabaseURL, exam, cfg.IntegratorCopies); err != nil {
		res.Checks = append(res.Checks, Check{Name: "seed-direct", Detail: err.Error()})
		return res, "", nil
	}
	res.Notes = append(res.Notes, fmt.Sprintf("seeded %d GRADED copies × %d scores directly through ent in %.1f s (-seed-direct)",
		cfg.IntegratorCopies, len(leaves), time.Since(t0).Seconds()))
	var tk struct{ CreateApiToken struct{ Token string } }
	if err := ds.Admin.Do(ctx, qCreateToken, map[string]any{"in": map[string]any{"name": "load integrator", "scopes": []string{"read"}}}, &tk); err != nil {
		res.Checks = append(res.Checks, Check{Name: "createApiToken", Detail: err.Error()})
		return res, "", nil
	}
	integ := ds.Admin.as(tk.CreateApiToken.Token)
	r := rec(fmt.Sprintf("copies page (first: %d) with scores and grade20", cfg.PageSize))
	seen := map[string]bool{}
	missingGrade := 0
	var after any
	var problems []string
	for {
		var p struct {
			Copies struct {
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
				Edges []struct {
					Node struct {
						ID      string
						Grade20 *float64
						Scores  []struct{ QuestionID string }
					}
				}
			}
		}
		if ctx.Err() != nil {
			problems = append(problems, "interrupted: "+ctx.Err().Error())
			break
		}
		if err := integ.Timed(ctx, r, qPage, map[string]any{"e": exam, "after": after, "n": cfg.PageSize}, &p); err != nil {
			problems = append(problems, err.Error())
			break
		}
		for _, e := range p.Copies.Edges {
			seen[e.Node.ID] = true
			if e.Node.Grade20 == nil || len(e.Node.Scores) != len(leaves) {
				missingGrade++
			}
		}
		if !p.Copies.PageInfo.HasNextPage || p.Copies.PageInfo.EndCursor == nil {
			break
		}
		after = *p.Copies.PageInfo.EndCursor
	}
	r.Stop()
	s := r.Summary()
	res.Summary = []Summary{s}
	res.Notes = append(res.Notes, fmt.Sprintf("%d copies in %.2f s: %.0f copies/s", len(seen), s.Seconds, float64(len(seen))/max(s.Seconds, 1e-9)))
	if len(seen) != cfg.IntegratorCopies {
		problems = append(problems, fmt.Sprintf("paged %d distinct copies, want %d", len(seen), cfg.IntegratorCopies))
	}
	if missingGrade > 0 {
		problems = append(problems, fmt.Sprintf("%d copies without grade20 or with missing scores", missingGrade))
	}
	res.Checks = append(res.Checks, check("every copy paged once, with its grade", problems, fmt.Sprintf("%d copies", len(seen))))
	return res, exam, integ
}
