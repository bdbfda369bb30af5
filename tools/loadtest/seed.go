package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
)

const (
	teacherPassword = "copper-lantern-meadow-91"
	qLogin          = `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token user { id } } }`
	qCreateUser     = `mutation($in: CreateUserInput!) { createUser(input: $in) { id } }`
	qCreateExam     = `mutation($in: CreateExamInput!) { createExam(input: $in) { id } }`
	qScheme         = `mutation($e: ID!, $s: [SchemeNodeInput!]!) { setGradingScheme(examId: $e, scheme: $s) { id maxPoints } }`
	qCorrectors     = `mutation($e: ID!, $u: [ID!]!) { setExamCorrectors(examId: $e, userIds: $u) { id } }`
	qImportCopy     = `mutation($e: ID!, $file: Upload!) { importCopy(examId: $e, file: $file) { id } }`
	qUploadScan     = `mutation($e: ID!, $file: Upload!) { uploadScan(examId: $e, file: $file) { id } }`
	qMarkReady      = `mutation($c: ID!) { markCopyReady(copyId: $c) { id status } }`
	qDispatch       = `mutation($e: ID!) { dispatchCopies(examId: $e) { assigned } }`
	qMyCopies       = `query($e: ID!) { myCopies(examId: $e, first: 100) { edges { node { id pageCount } } } }`
	qJobs           = `query($ids: [ID!]!) { nodes(ids: $ids) { ... on Job { id kind state error copy { id } } } }`
	qCreateToken    = `mutation($in: CreateApiTokenInput!) { createApiToken(input: $in) { token } }`
)

// leaves of the load test's marking scheme: five questions of 4 points.
var leaves = []string{"q1", "q2", "q3a", "q3b", "q3c"}

func loadScheme() []map[string]any {
	leaf := func(id, label string) map[string]any {
		return map[string]any{"id": id, "label": label, "points": 4.0}
	}
	return []map[string]any{
		leaf("q1", "Exercice 1"), leaf("q2", "Exercice 2"),
		{"id": "ex3", "label": "Exercice 3", "children": []map[string]any{
			leaf("q3a", "Question a"), leaf("q3b", "Question b"), leaf("q3c", "Question c")}},
	}
}

// Teacher is a corrector's session and the copies dispatched to them.
type Teacher struct {
	ID, Token string
	Client    *Client
	Copies    []CopyRef
}

// CopyRef is a copy and its page count.
type CopyRef struct {
	ID        string `json:"id"`
	PageCount int    `json:"pageCount"`
}

// Dataset is what seed creates through the API.
type Dataset struct {
	Admin    *Client
	Teachers []*Teacher
	// ExamA: grading (correctors, dispatched copies); ExamB: admin's finalize copies.
	ExamA, ExamB string
	CopiesA      []string
	CopiesB      []string
	SeedSeconds  float64
}

type job struct {
	ID    string  `json:"id"`
	Kind  string  `json:"kind"`
	State string  `json:"state"`
	Error *string `json:"error"`
	Copy  *struct {
		ID string `json:"id"`
	} `json:"copy"`
}

func terminal(state string) bool {
	return state == "SUCCEEDED" || state == "FAILED" || state == "CANCELLED"
}

// waitJobs polls until every job is terminal (or timeout) and returns them.
func waitJobs(ctx context.Context, c *Client, ids []string, timeout time.Duration) (map[string]job, error) {
	out := map[string]job{}
	deadline := time.Now().Add(timeout)
	pending := append([]string(nil), ids...)
	for len(pending) > 0 {
		var next []string
		for i := 0; i < len(pending); i += 100 {
			batch := pending[i:min(i+100, len(pending))]
			var r struct{ Nodes []*job }
			if err := c.Do(ctx, qJobs, map[string]any{"ids": batch}, &r); err != nil {
				return out, fmt.Errorf("poll jobs: %w", err)
			}
			for k, j := range r.Nodes {
				if j == nil {
					next = append(next, batch[k])
					continue
				}
				out[j.ID] = *j
				if !terminal(j.State) {
					next = append(next, j.ID)
				}
			}
		}
		pending = next
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("%d of %d jobs still running after %s", len(pending), len(ids), timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
	return out, nil
}

func login(ctx context.Context, c *Client, email, password string) (token, id string, err error) {
	var r struct {
		Login struct {
			Token string
			User  struct{ ID string }
		}
	}
	err = c.as("").Do(ctx, qLogin, map[string]any{"e": email, "p": password}, &r)
	return r.Login.Token, r.Login.User.ID, err
}

func createExam(ctx context.Context, admin *Client, name string, withScheme bool) (string, error) {
	var r struct{ CreateExam struct{ ID string } }
	if err := admin.Do(ctx, qCreateExam, map[string]any{"in": map[string]any{
		"name": name, "date": "2026-11-20", "pagesPerBooklet": 4}}, &r); err != nil {
		return "", fmt.Errorf("createExam %s: %w", name, err)
	}
	if withScheme {
		if err := admin.Do(ctx, qScheme, map[string]any{"e": r.CreateExam.ID, "s": loadScheme()}, nil); err != nil {
			return "", fmt.Errorf("setGradingScheme: %w", err)
		}
	}
	return r.CreateExam.ID, nil
}

// parallel runs fn(i) for i in [0, n) on at most width goroutines and
// returns the first error.
func parallel(n, width int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, width)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// importCopies imports n copies of pdfPath into exam through importCopy and
// marks them READY; returns the copy ids.
func importCopies(ctx context.Context, admin *Client, rec, jobRec *Recorder, exam, pdfPath string, n int) ([]string, error) {
	jobIDs := make([]string, n)
	t0 := time.Now()
	err := parallel(n, n, func(i int) error {
		var r struct{ ImportCopy struct{ ID string } }
		t := time.Now()
		err := admin.Upload(ctx, qImportCopy, map[string]any{"e": exam}, pdfPath, &r)
		rec.Add(time.Since(t), codeOf(err))
		jobIDs[i] = r.ImportCopy.ID
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("importCopy: %w", err)
	}
	rec.Stop()
	jobs, err := waitJobs(ctx, admin, jobIDs, 5*time.Minute)
	jobRec.Add(time.Since(t0), codeOf(err))
	jobRec.Stop()
	if err != nil {
		return nil, err
	}
	copies := make([]string, 0, n)
	for _, id := range jobIDs {
		j := jobs[id]
		if j.State != "SUCCEEDED" || j.Copy == nil {
			return nil, fmt.Errorf("import job %s ended %s (%v)", id, j.State, deref(j.Error))
		}
		copies = append(copies, j.Copy.ID)
	}
	err = parallel(len(copies), 8, func(i int) error {
		return admin.Do(ctx, qMarkReady, map[string]any{"c": copies[i]}, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("markCopyReady: %w", err)
	}
	return copies, nil
}

const qExamCopies = `query($e: ID!, $after: Cursor) { copies(first: 100, after: $after, where: {hasExamWith: [{id: $e}]}) {
  pageInfo { hasNextPage endCursor } edges { node { id } } } }`

// scanCopies makes n 4-page copies in exam with one uploadScan of the A4 copy
// repeated n times (one SPLIT_SCAN job: much faster than n importCopy jobs),
// and marks them READY.
func scanCopies(ctx context.Context, admin *Client, exam, pdfPath string, n int) ([]string, error) {
	file, err := buildPages(pdfPath, 4*n)
	if err != nil {
		return nil, fmt.Errorf("build scan: %w", err)
	}
	var r struct{ UploadScan struct{ ID string } }
	if err := admin.UploadBytes(ctx, qUploadScan, map[string]any{"e": exam}, "seed.pdf", file, &r); err != nil {
		return nil, fmt.Errorf("uploadScan: %w", err)
	}
	j, err := waitOne(ctx, admin, r.UploadScan.ID, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	if j.State != "SUCCEEDED" {
		return nil, fmt.Errorf("seed scan job ended %s: %s", j.State, deref(j.Error))
	}
	var copies []string
	var after any
	for {
		var p struct {
			Copies struct {
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
				Edges []struct{ Node struct{ ID string } }
			}
		}
		if err := admin.Do(ctx, qExamCopies, map[string]any{"e": exam, "after": after}, &p); err != nil {
			return nil, fmt.Errorf("list copies: %w", err)
		}
		for _, e := range p.Copies.Edges {
			copies = append(copies, e.Node.ID)
		}
		if !p.Copies.PageInfo.HasNextPage || p.Copies.PageInfo.EndCursor == nil {
			break
		}
		after = *p.Copies.PageInfo.EndCursor
	}
	if len(copies) != n {
		return nil, fmt.Errorf("seed scan gave %d copies, want %d", len(copies), n)
	}
	err = parallel(len(copies), 8, func(i int) error {
		return admin.Do(ctx, qMarkReady, map[string]any{"c": copies[i]}, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("markCopyReady: %w", err)
	}
	return copies, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// seed creates the fixed dataset: 30 teachers, exam A (100 copies dispatched
// over the 30 teachers), exam B (21 copies the admin finalizes).
func seed(ctx context.Context, cfg *Config, base *Client) (*Dataset, error) {
	t0 := time.Now()
	ds := &Dataset{}
	tok, _, err := login(ctx, base, cfg.AdminEmail, cfg.AdminPassword)
	if err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}
	ds.Admin = base.as(tok)
	ds.Teachers = make([]*Teacher, cfg.Teachers)
	err = parallel(cfg.Teachers, 4, func(i int) error {
		email := fmt.Sprintf("teacher%02d@load.korrigo.test", i+1)
		if err := ds.Admin.Do(ctx, qCreateUser, map[string]any{"in": map[string]any{
			"email": email, "name": fmt.Sprintf("Professeur %02d", i+1), "role": "TEACHER", "password": teacherPassword}}, nil); err != nil {
			return fmt.Errorf("createUser: %w", err)
		}
		tok, id, err := login(ctx, base, email, teacherPassword)
		if err != nil {
			return fmt.Errorf("teacher login: %w", err)
		}
		ds.Teachers[i] = &Teacher{ID: id, Token: tok, Client: base.as(tok)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ds.ExamA, err = createExam(ctx, ds.Admin, "Load A — grading", true); err != nil {
		return nil, err
	}
	if ds.ExamB, err = createExam(ctx, ds.Admin, "Load B — finalize", true); err != nil {
		return nil, err
	}
	ids := make([]string, len(ds.Teachers))
	for i, t := range ds.Teachers {
		ids[i] = t.ID
	}
	if err := ds.Admin.Do(ctx, qCorrectors, map[string]any{"e": ds.ExamA, "u": ids}, nil); err != nil {
		return nil, fmt.Errorf("setExamCorrectors: %w", err)
	}
	if ds.CopiesA, err = scanCopies(ctx, ds.Admin, ds.ExamA, cfg.pdf("copy-a4-4p.pdf"), cfg.CopiesA); err != nil {
		return nil, err
	}
	if ds.CopiesB, err = scanCopies(ctx, ds.Admin, ds.ExamB, cfg.pdf("copy-a4-4p.pdf"), cfg.FinalizeDistinct+1); err != nil {
		return nil, err
	}
	if err := ds.Admin.Do(ctx, qDispatch, map[string]any{"e": ds.ExamA}, nil); err != nil {
		return nil, fmt.Errorf("dispatchCopies: %w", err)
	}
	err = parallel(len(ds.Teachers), 8, func(i int) error {
		t := ds.Teachers[i]
		var r struct {
			MyCopies struct{ Edges []struct{ Node CopyRef } }
		}
		if err := t.Client.Do(ctx, qMyCopies, map[string]any{"e": ds.ExamA}, &r); err != nil {
			return fmt.Errorf("myCopies: %w", err)
		}
		for _, e := range r.MyCopies.Edges {
			t.Copies = append(t.Copies, e.Node)
		}
		return nil
	})
	ds.SeedSeconds = time.Since(t0).Seconds()
	return ds, err
}

// seedDirect inserts n GRADED copies with every question scored into exam,
// straight into the database through ent (the API would need n imports and n
// finalizations: hours). The copies share the source blob of an imported copy
// and have no final PDF; only the integrator scenario reads them.
func seedDirect(ctx context.Context, dbURL, exam string, n int) error {
	d, err := db.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer d.Close()
	sys := rules.System(ctx)
	blobID, err := d.Client.Blob.Query().FirstID(sys)
	if err != nil {
		return fmt.Errorf("seed-direct: a blob to share: %w", err)
	}
	now := time.Now().UTC()
	const batch = 500
	for start := 0; start < n; start += batch {
		end := min(n, start+batch)
		tx, err := d.Client.Tx(sys)
		if err != nil {
			return err
		}
		builders := make([]*ent.ExamCopyCreate, 0, end-start)
		for i := start; i < end; i++ {
			builders = append(builders, tx.ExamCopy.Create().SetExamID(exam).
				SetAnonymousID(fmt.Sprintf("%s-L%05d", exam[len(exam)-8:], i)).
				SetStatus(examcopy.StatusGRADED).SetPageCount(4).SetSourceBlobID(blobID).
				SetGradedAt(now).SetAppreciation("Bon travail"))
		}
		copies, err := tx.ExamCopy.CreateBulk(builders...).Save(sys)
		if err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("seed-direct: copies: %w", err)
		}
		scores := make([]*ent.QuestionScoreCreate, 0, len(copies)*len(leaves))
		for k, c := range copies {
			for q, leaf := range leaves {
				scores = append(scores, tx.QuestionScore.Create().SetCopyID(c.ID).SetQuestionID(leaf).
					SetPoints(float64((k+q)%5)))
			}
		}
		for i := 0; i < len(scores); i += 1000 {
			if err := tx.QuestionScore.CreateBulk(scores[i:min(i+1000, len(scores))]...).Exec(sys); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("seed-direct: scores: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}
