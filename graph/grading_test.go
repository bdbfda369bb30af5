package graph_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/annotationrevision"
	"github.com/korrigo/korrigo/ent/copylock"
	"github.com/korrigo/korrigo/ent/draft"
	"github.com/korrigo/korrigo/ent/gradingevent"
	"github.com/korrigo/korrigo/ent/job"
	"github.com/korrigo/korrigo/ent/questionscore"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server/servertest"
)

const (
	acquire  = `mutation($c: ID!, $ttl: Int){ acquireCopyLock(copyId: $c, ttlSeconds: $ttl){ token expiresAt owner { id name } } }`
	release  = `mutation($c: ID!, $t: String!){ releaseCopyLock(copyId: $c, token: $t) }`
	save     = `mutation($c: ID!, $cl: String!, $p: JSON!, $b: Int){ saveDraft(copyId: $c, clientId: $cl, payload: $p, baseVersion: $b){ version clientId } }`
	annotate = `mutation($c: ID!, $t: String!, $in: AnnotationInput!){ createAnnotation(copyId: $c, lockToken: $t, input: $in){ id version } }`
	update   = `mutation($id: ID!, $t: String!, $v: Int!, $in: AnnotationPatch!){ updateAnnotation(id: $id, lockToken: $t, version: $v, input: $in){ id version text } }`
	score    = `mutation($c: ID!, $t: String!, $q: String!, $p: Float){ setQuestionScore(copyId: $c, lockToken: $t, questionId: $q, points: $p){ total grade20 } }`
	finalize = `mutation($c: ID!, $t: String!){ finalizeCopy(copyId: $c, lockToken: $t){ id kind state } }`
)

type lockData struct {
	AcquireCopyLock struct {
		Token string
		Owner struct{ ID, Name string }
	} `json:"acquireCopyLock"`
}

func takeLock(t *testing.T, c *servertest.Client, copyID string) string {
	t.Helper()
	var out lockData
	c.MustDo(acquire, map[string]any{"c": copyID}, &out)
	return out.AcquireCopyLock.Token
}

// 50 callers race for one free copy, 100 rounds, through the real API: exactly one
// winner each round, every other caller gets LOCKED naming the winner.
func TestAcquireCopyLockRace(t *testing.T) {
	const racers, rounds = 50, 100
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		ex := env.NewExam()
		cp := env.NewCopy(ex, servertest.CopyOpts{})
		clients := make([]*servertest.Client, racers)
		ids := make([]string, racers)
		for i := range clients {
			u, token := env.NewUser(user.RoleADMIN, fmt.Sprintf("Racer%d", i))
			clients[i], ids[i] = env.As(token), u.ID
		}
		for round := range rounds {
			var wg sync.WaitGroup
			results := make([]servertest.Response, racers)
			start := make(chan struct{})
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					results[i] = clients[i].Do(acquire, map[string]any{"c": cp.ID})
				}()
			}
			close(start)
			wg.Wait()
			winner, token := -1, ""
			for i, r := range results {
				if len(r.Errors) == 0 {
					if winner >= 0 {
						t.Fatalf("round %d: two holders, %d and %d", round, winner, i)
					}
					var out lockData
					mustDecode(t, r, &out)
					winner, token = i, out.AcquireCopyLock.Token
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: nobody won: %+v", round, results[0].Errors)
			}
			for i, r := range results {
				if i == winner {
					continue
				}
				if code := env.ErrorCode(r); code != "LOCKED" {
					t.Fatalf("round %d: loser %d got %s: %s", round, i, code, r.Errors[0].Message)
				}
				lock, _ := r.Errors[0].Extensions["lock"].(map[string]any)
				owner, _ := lock["owner"].(map[string]any)
				if owner["id"] != ids[winner] || lock["expiresAt"] == nil {
					t.Fatalf("round %d: LOCKED names %v, winner is %s", round, lock, ids[winner])
				}
			}
			clients[winner].MustDo(release, map[string]any{"c": cp.ID, "t": token}, nil)
		}
	})
}

func mustDecode(t *testing.T, r servertest.Response, out any) {
	t.Helper()
	if err := jsonDecode(r, out); err != nil {
		t.Fatal(err)
	}
}

// jsonDecode decodes a response without errors.
func jsonDecode(r servertest.Response, out any) error {
	if len(r.Errors) > 0 {
		return fmt.Errorf("GraphQL errors: %+v", r.Errors)
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		return fmt.Errorf("decode %s: %w", r.Data, err)
	}
	return nil
}

// A live lease cannot be taken; an expired one can, and its old token is dead.
// Re-acquiring one's own lease returns the same token.
func TestLockExpiryThroughAPI(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		alice, aliceToken := env.NewUser(user.RoleTEACHER, "Alice")
		_, adminToken := env.NewUser(user.RoleADMIN, "Office")
		ex := env.NewExam(alice)
		cp := env.NewCopy(ex, servertest.CopyOpts{Corrector: alice})
		as, other := env.As(aliceToken), env.As(adminToken)

		lease := takeLock(t, as, cp.ID)
		if again := takeLock(t, as, cp.ID); again != lease {
			t.Fatalf("re-acquire gave a new token")
		}
		if code := env.ErrorCode(other.Do(acquire, map[string]any{"c": cp.ID})); code != "LOCKED" {
			t.Fatalf("live lease taken over: %s", code)
		}
		expire(t, env, cp.ID)
		stolen := takeLock(t, other, cp.ID)
		if stolen == lease {
			t.Fatal("a new lease reuses the expired token")
		}
		r := as.Do(annotate, map[string]any{"c": cp.ID, "t": lease, "in": rect(0)})
		if code := env.ErrorCode(r); code != "LOCK_REQUIRED" {
			t.Fatalf("expired token accepted: %s", code)
		}
	})
}

func expire(t *testing.T, env *servertest.Env, copyID string) {
	t.Helper()
	if _, err := env.DB.Client.CopyLock.Update().Where(copylock.CopyID(copyID)).
		SetExpiresAt(time.Now().UTC().Add(-time.Second)).Save(env.Ctx()); err != nil {
		t.Fatal(err)
	}
}

func rect(page int) map[string]any {
	return map[string]any{"pageIndex": page, "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.1, "kind": "COMMENT", "text": "Très bien"}
}

// 100 concurrent autosaves from one tab all succeed with versions exactly 1..100;
// two tabs racing the first save: one creates, the other gets VERSION_CONFLICT.
func TestSaveDraftConcurrency(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		alice, token := env.NewUser(user.RoleTEACHER, "Alice")
		ex := env.NewExam(alice)
		cp := env.NewCopy(ex, servertest.CopyOpts{Corrector: alice})
		as := env.As(token)

		const saves = 100
		versions := make([]int, saves)
		var wg sync.WaitGroup
		for i := range saves {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := as.Do(save, map[string]any{"c": cp.ID, "cl": "tab-1", "p": map[string]any{"n": i}})
				if len(r.Errors) > 0 {
					t.Errorf("save %d: %+v", i, r.Errors)
					return
				}
				var out struct{ SaveDraft struct{ Version int } }
				mustDecode(t, r, &out)
				versions[i] = out.SaveDraft.Version
			}()
		}
		wg.Wait()
		seen := make([]bool, saves+1)
		for _, v := range versions {
			if v < 1 || v > saves || seen[v] {
				t.Fatalf("versions are not exactly 1..%d: %v", saves, versions)
			}
			seen[v] = true
		}

		// Another tab without the stored version is refused; with it, it takes over.
		r := as.Do(save, map[string]any{"c": cp.ID, "cl": "tab-2", "p": map[string]any{"x": 1}})
		if code := env.ErrorCode(r); code != "VERSION_CONFLICT" || r.Errors[0].Extensions["currentVersion"] != float64(saves) {
			t.Fatalf("other tab: %s %v", code, r.Errors[0].Extensions)
		}
		var took struct {
			SaveDraft struct {
				Version  int
				ClientID string `json:"clientId"`
			}
		}
		as.MustDo(save, map[string]any{"c": cp.ID, "cl": "tab-2", "p": map[string]any{"x": 2}, "b": saves}, &took)
		if took.SaveDraft.Version != saves+1 || took.SaveDraft.ClientID != "tab-2" {
			t.Fatalf("takeover = %+v", took.SaveDraft)
		}

		// First save raced by two tabs, 50 times on fresh copies.
		for round := range 50 {
			fresh := env.NewCopy(ex, servertest.CopyOpts{Corrector: alice})
			var wg sync.WaitGroup
			res := make([]servertest.Response, 2)
			for i := range res {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res[i] = as.Do(save, map[string]any{"c": fresh.ID, "cl": fmt.Sprintf("tab-%d", i), "p": map[string]any{"i": i}})
				}()
			}
			wg.Wait()
			ok, conflicts := 0, 0
			for _, r := range res {
				switch {
				case len(r.Errors) == 0:
					ok++
				case r.Errors[0].Code() == "VERSION_CONFLICT":
					conflicts++
				default:
					t.Fatalf("round %d: %+v", round, r.Errors)
				}
			}
			if ok != 1 || conflicts != 1 {
				t.Fatalf("round %d: %d successes, %d conflicts", round, ok, conflicts)
			}
		}
		big := strings.Repeat("x", 300<<10)
		r = as.Do(save, map[string]any{"c": cp.ID, "cl": "tab-2", "p": map[string]any{"big": big}})
		if code := env.ErrorCode(r); code != "PAYLOAD_TOO_LARGE" {
			t.Fatalf("300 KiB draft: %s", code)
		}
		stored, err := env.DB.Client.Draft.Query().Where(draft.CopyID(cp.ID)).Only(env.Ctx())
		if err != nil || stored.Version != saves+1 {
			t.Fatalf("refused draft changed the stored one: %v %v", stored, err)
		}
	})
}

// Two tabs update one annotation with the same version: one wins, the other gets
// VERSION_CONFLICT with the current version; the history has every accepted change.
func TestAnnotationUpdateRace(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		alice, token := env.NewUser(user.RoleTEACHER, "Alice")
		ex := env.NewExam(alice)
		cp := env.NewCopy(ex, servertest.CopyOpts{Corrector: alice})
		as := env.As(token)
		lease := takeLock(t, as, cp.ID)
		var made struct {
			CreateAnnotation struct {
				ID      string
				Version int
			}
		}
		as.MustDo(annotate, map[string]any{"c": cp.ID, "t": lease, "in": rect(1)}, &made)
		id, version := made.CreateAnnotation.ID, made.CreateAnnotation.Version

		const rounds = 20
		for round := range rounds {
			res := make([]servertest.Response, 2)
			var wg sync.WaitGroup
			for i := range res {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res[i] = as.Do(update, map[string]any{"id": id, "t": lease, "v": version,
						"in": map[string]any{"text": fmt.Sprintf("round %d tab %d", round, i)}})
				}()
			}
			wg.Wait()
			winners := 0
			for _, r := range res {
				if len(r.Errors) == 0 {
					winners++
					var out struct{ UpdateAnnotation struct{ Version int } }
					mustDecode(t, r, &out)
					version = out.UpdateAnnotation.Version
					continue
				}
				if code := r.Errors[0].Code(); code != "VERSION_CONFLICT" {
					t.Fatalf("round %d: %s", round, code)
				}
			}
			if winners != 1 {
				t.Fatalf("round %d: %d winners", round, winners)
			}
			for _, r := range res {
				if len(r.Errors) > 0 && r.Errors[0].Extensions["currentVersion"] != float64(version) {
					t.Fatalf("round %d: currentVersion %v, want %d", round, r.Errors[0].Extensions["currentVersion"], version)
				}
			}
		}
		revs, err := env.DB.Client.AnnotationRevision.Query().Where(annotationrevision.AnnotationID(id)).Count(env.Ctx())
		if err != nil || revs != rounds+1 {
			t.Fatalf("revisions = %d, want %d (create + every accepted update)", revs, rounds+1)
		}
	})
}

// 20 concurrent finalizations: one job, one status change, one FINALIZE event, the
// same job for everyone. Once GRADED, every write is refused.
func TestFinalizeIsIdempotentAndGradedIsFinal(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		alice, token := env.NewUser(user.RoleTEACHER, "Alice")
		ex := env.NewExam(alice)
		cp := env.NewCopy(ex, servertest.CopyOpts{Corrector: alice})
		as := env.As(token)
		lease := takeLock(t, as, cp.ID)
		r := as.Do(finalize, map[string]any{"c": cp.ID, "t": lease})
		if code := env.ErrorCode(r); code != "BAD_USER_INPUT" {
			t.Fatalf("finalize without scores: %s", code)
		}
		var scored struct {
			SetQuestionScore struct {
				Total   float64
				Grade20 *float64
			}
		}
		as.MustDo(score, map[string]any{"c": cp.ID, "t": lease, "q": "q1", "p": 3.5}, &scored)
		if scored.SetQuestionScore.Grade20 != nil {
			t.Fatalf("grade20 before every question is scored: %v", *scored.SetQuestionScore.Grade20)
		}
		as.MustDo(score, map[string]any{"c": cp.ID, "t": lease, "q": "q2a", "p": 5}, &scored)
		if scored.SetQuestionScore.Total != 8.5 || scored.SetQuestionScore.Grade20 == nil || *scored.SetQuestionScore.Grade20 != 17 {
			t.Fatalf("total/grade = %+v", scored.SetQuestionScore)
		}

		const callers = 20
		jobs := make([]string, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := as.Do(finalize, map[string]any{"c": cp.ID, "t": lease})
				if len(r.Errors) > 0 {
					t.Errorf("finalize %d: %+v", i, r.Errors)
					return
				}
				var out struct {
					FinalizeCopy struct{ ID, Kind, State string }
				}
				mustDecode(t, r, &out)
				jobs[i] = out.FinalizeCopy.ID
			}()
		}
		wg.Wait()
		for _, j := range jobs {
			if j == "" || j != jobs[0] {
				t.Fatalf("callers got different jobs: %v", jobs)
			}
		}
		ctx := env.Ctx()
		if n, _ := env.DB.Client.Job.Query().Where(job.CopyID(cp.ID), job.KindEQ(job.KindFINALIZE_COPY)).Count(ctx); n != 1 {
			t.Fatalf("%d finalize jobs", n)
		}
		if n, _ := env.DB.Client.GradingEvent.Query().Where(gradingevent.CopyID(cp.ID), gradingevent.Action("FINALIZE")).Count(ctx); n != 1 {
			t.Fatalf("%d FINALIZE events", n)
		}
		if n, _ := env.DB.Client.CopyLock.Query().Where(copylock.CopyID(cp.ID)).Count(ctx); n != 0 {
			t.Fatal("the lease survived finalization")
		}

		// The worker (issue 5) completes the job; here the service does it directly.
		blob := env.DB.Client.Blob.Create().SetSha256(strings.Repeat("ab", 32)).SetSize(1).
			SetMediaType("application/pdf").SaveX(ctx)
		if _, err := env.App.Services.Grading.CompleteFinalize(ctx, cp.ID, blob.ID); err != nil {
			t.Fatal(err)
		}
		before, _ := env.DB.Client.QuestionScore.Query().Where(questionscore.CopyID(cp.ID)).All(ctx)
		for name, op := range map[string]struct {
			q    string
			vars map[string]any
		}{
			"acquire":      {acquire, map[string]any{"c": cp.ID}},
			"draft":        {save, map[string]any{"c": cp.ID, "cl": "tab", "p": map[string]any{}}},
			"annotation":   {annotate, map[string]any{"c": cp.ID, "t": lease, "in": rect(0)}},
			"score":        {score, map[string]any{"c": cp.ID, "t": lease, "q": "q1", "p": 4}},
			"appreciation": {`mutation($c: ID!, $t: String!){ setAppreciation(copyId: $c, lockToken: $t, text: "Bien") { id } }`, map[string]any{"c": cp.ID, "t": lease}},
			"finalize":     {finalize, map[string]any{"c": cp.ID, "t": lease}},
		} {
			if code := env.ErrorCode(as.Do(op.q, op.vars)); code != "INVALID_TRANSITION" {
				t.Errorf("%s on a GRADED copy: %s", name, code)
			}
		}
		after, _ := env.DB.Client.QuestionScore.Query().Where(questionscore.CopyID(cp.ID)).All(ctx)
		if len(after) != len(before) || after[0].Points != before[0].Points {
			t.Fatal("a refused write changed the scores")
		}
	})
}

// Only the assignee (and admins) grade; students never.
func TestGradingAuthorization(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		alice, aliceToken := env.NewUser(user.RoleTEACHER, "Alice")
		bob, bobToken := env.NewUser(user.RoleTEACHER, "Bob")
		_, pupilToken := env.NewUser(user.RoleSTUDENT, "Pupil")
		ex := env.NewExam(alice, bob)
		cp := env.NewCopy(ex, servertest.CopyOpts{Corrector: alice})
		lease := takeLock(t, env.As(aliceToken), cp.ID)
		ops := map[string]struct {
			q    string
			vars map[string]any
		}{
			"acquire":    {acquire, map[string]any{"c": cp.ID}},
			"release":    {release, map[string]any{"c": cp.ID, "t": lease}},
			"break":      {`mutation($c: ID!){ breakCopyLock(copyId: $c) }`, map[string]any{"c": cp.ID}},
			"draft":      {save, map[string]any{"c": cp.ID, "cl": "tab", "p": map[string]any{}}},
			"annotation": {annotate, map[string]any{"c": cp.ID, "t": lease, "in": rect(0)}},
			"score":      {score, map[string]any{"c": cp.ID, "t": lease, "q": "q1", "p": 1}},
			"finalize":   {finalize, map[string]any{"c": cp.ID, "t": lease}},
			"ready":      {`mutation($c: ID!){ markCopyReady(copyId: $c){ id } }`, map[string]any{"c": cp.ID}},
		}
		for who, token := range map[string]string{"other teacher": bobToken, "student": pupilToken} {
			for name, op := range ops {
				if code := env.ErrorCode(env.As(token).Do(op.q, op.vars)); code != "FORBIDDEN" {
					t.Errorf("%s %s: %s", who, name, code)
				}
			}
		}
		if n, _ := env.DB.Client.Annotation.Query().Count(env.Ctx()); n != 0 {
			t.Fatalf("%d annotations written by refused calls", n)
		}
	})
}

// Bad input is typed and writes nothing.
func TestGradingBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		alice, token := env.NewUser(user.RoleTEACHER, "Alice")
		ex := env.NewExam(alice)
		cp := env.NewCopy(ex, servertest.CopyOpts{Corrector: alice, Pages: 4})
		as := env.As(token)
		lease := takeLock(t, as, cp.ID)
		for name, in := range map[string]map[string]any{
			"negative x":  {"pageIndex": 0, "x": -0.1, "y": 0.1, "w": 0.2, "h": 0.1, "kind": "COMMENT"},
			"zero width":  {"pageIndex": 0, "x": 0.1, "y": 0.1, "w": 0, "h": 0.1, "kind": "COMMENT"},
			"past right":  {"pageIndex": 0, "x": 0.9, "y": 0.1, "w": 0.2, "h": 0.1, "kind": "COMMENT"},
			"past bottom": {"pageIndex": 0, "x": 0.1, "y": 0.95, "w": 0.2, "h": 0.1, "kind": "COMMENT"},
			"page 4 of 4": {"pageIndex": 4, "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.1, "kind": "COMMENT"},
			"bad kind":    {"pageIndex": 0, "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.1, "kind": "SCRIBBLE"},
			"huge points": {"pageIndex": 0, "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.1, "kind": "BONUS", "points": 1e9},
		} {
			if code := env.ErrorCode(as.Do(annotate, map[string]any{"c": cp.ID, "t": lease, "in": in})); code != "BAD_USER_INPUT" {
				t.Errorf("%s: %s", name, code)
			}
		}
		for name, v := range map[string]map[string]any{
			"negative":  {"q": "q1", "p": -1},
			"over max":  {"q": "q1", "p": 4.5},
			"unknown q": {"q": "q9", "p": 1},
			"group":     {"q": "q2", "p": 1},
		} {
			v["c"], v["t"] = cp.ID, lease
			if code := env.ErrorCode(as.Do(score, v)); code != "BAD_USER_INPUT" {
				t.Errorf("score %s: %s", name, code)
			}
		}
		if code := env.ErrorCode(as.Do(acquire, map[string]any{"c": "cpy_0000000000000000000000000"})); code != "NOT_FOUND" {
			t.Errorf("unknown copy: %s", code)
		}
		if code := env.ErrorCode(as.Do(acquire, map[string]any{"c": cp.ID, "ttl": 5})); code != "BAD_USER_INPUT" {
			t.Errorf("ttl 5 s: %s", code)
		}
		ctx := env.Ctx()
		if n, _ := env.DB.Client.Annotation.Query().Count(ctx); n != 0 {
			t.Fatalf("%d annotations written", n)
		}
		if n, _ := env.DB.Client.QuestionScore.Query().Count(ctx); n != 0 {
			t.Fatalf("%d scores written", n)
		}
	})
}
