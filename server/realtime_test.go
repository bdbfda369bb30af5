package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/job"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/realtime"
	"github.com/korrigo/korrigo/server"
	"github.com/korrigo/korrigo/server/httpctx"
	"github.com/korrigo/korrigo/server/servertest"
)

const (
	subLocks = `subscription($e: ID!){ copyLockChanged(examId: $e){
		kind examId copyId owner { id name } expiresAt at locks { copyId owner { id name } expiresAt } } }`
	subStatus = `subscription($e: ID!){ copyStatusChanged(examId: $e){
		kind examId copyId status previousStatus version copies { copyId status version } } }`
	subJob = `subscription($j: ID!){ jobProgress(jobId: $j){ id state progress { done total } } }`
)

type lockEvent struct {
	Kind      string
	ExamID    string
	CopyID    *string
	Owner     *struct{ ID, Name string }
	ExpiresAt *time.Time
	Locks     []struct {
		CopyID    string
		Owner     struct{ ID, Name string }
		ExpiresAt time.Time
	}
}

type statusEvent struct {
	Kind           string
	CopyID         *string
	Status         *string
	PreviousStatus *string
	Version        *int
	Copies         []struct {
		CopyID  string
		Status  string
		Version int
	}
}

func nextLock(t *testing.T, c *wsConn, id string) lockEvent {
	t.Helper()
	var d struct{ CopyLockChanged lockEvent }
	c.data(id, &d)
	return d.CopyLockChanged
}

func nextStatus(t *testing.T, c *wsConn, id string) statusEvent {
	t.Helper()
	var d struct{ CopyStatusChanged statusEvent }
	c.data(id, &d)
	return d.CopyStatusChanged
}

func acquire(t *testing.T, e *servertest.Env, token, copyID string) string {
	t.Helper()
	var d struct{ AcquireCopyLock struct{ Token string } }
	e.As(token).MustDo(`mutation($c: ID!){ acquireCopyLock(copyId: $c){ token } }`, map[string]any{"c": copyID}, &d)
	return d.AcquireCopyLock.Token
}

// Two instances sharing one database and one Redis, each with its own broker:
// what happens through B reaches a subscriber of A, and a late subscriber gets
// the snapshot first. Runs on SQLite and, when configured, PostgreSQL.
func TestRealtimeAcrossInstances(t *testing.T) {
	redisURL := testRedisURL(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newInstance(t, d, redisURL, nil)
		b := newInstance(t, d, redisURL, nil)
		if a.App.Broker.Name() != "redis" || a.App.Broker == b.App.Broker {
			t.Fatalf("want two separate redis brokers")
		}
		admin := a.Admin()
		t1, t1Token := a.NewUser(user.RoleTEACHER, "Marie")
		t2, t2Token := a.NewUser(user.RoleTEACHER, "Paul")
		ex := a.NewExam(t1, t2)
		cp := a.NewCopy(ex, servertest.CopyOpts{Corrector: t1})
		staging := a.NewCopy(ex, servertest.CopyOpts{Corrector: t2, Status: examcopy.StatusSTAGING})

		// Paul follows the exam's locks on A (auth in connection_init).
		paul := mustDial(t, a, dialOpts{})
		paul.init(bearer(t2Token))
		locks := paul.subscribe(subLocks, map[string]any{"e": ex.ID})
		if s := nextLock(t, paul, locks); s.Kind != "SNAPSHOT" || len(s.Locks) != 0 || s.ExamID != ex.ID {
			t.Fatalf("first message: want an empty SNAPSHOT, got %+v", s)
		}

		// Marie takes her copy through B.
		lockToken := acquire(t, b, t1Token, cp.ID)
		ev := nextLock(t, paul, locks)
		if ev.Kind != "ACQUIRED" || ev.CopyID == nil || *ev.CopyID != cp.ID || ev.Owner == nil ||
			ev.Owner.ID != t1.ID || ev.Owner.Name != "Marie" || ev.ExpiresAt == nil || !ev.ExpiresAt.After(time.Now()) {
			t.Fatalf("want ACQUIRED of %s by Marie, got %+v", cp.ID, ev)
		}

		// A late subscriber (the admin, on B, authenticated by the session
		// cookie of the upgrade request) gets the snapshot with the lease first.
		h := http.Header{}
		h.Add("Cookie", httpctx.SessionCookie+"="+admin)
		office := mustDial(t, b, dialOpts{header: h})
		office.init(nil)
		late := office.subscribe(subLocks, map[string]any{"e": ex.ID})
		s := nextLock(t, office, late)
		if s.Kind != "SNAPSHOT" || len(s.Locks) != 1 || s.Locks[0].CopyID != cp.ID || s.Locks[0].Owner.ID != t1.ID ||
			s.Locks[0].Owner.Name != "Marie" {
			t.Fatalf("late subscriber: want a SNAPSHOT holding %s, got %+v", cp.ID, s)
		}

		// Renew and release through A: both subscribers see both, in order.
		a.As(t1Token).MustDo(`mutation($c: ID!, $t: String!){ renewCopyLock(copyId: $c, token: $t){ expiresAt } }`,
			map[string]any{"c": cp.ID, "t": lockToken}, nil)
		a.As(t1Token).MustDo(`mutation($c: ID!, $t: String!){ releaseCopyLock(copyId: $c, token: $t) }`,
			map[string]any{"c": cp.ID, "t": lockToken}, nil)
		for _, w := range []struct {
			c  *wsConn
			id string
		}{{paul, locks}, {office, late}} {
			if ev := nextLock(t, w.c, w.id); ev.Kind != "RENEWED" || ev.ExpiresAt == nil {
				t.Fatalf("want RENEWED, got %+v", ev)
			}
			if ev := nextLock(t, w.c, w.id); ev.Kind != "RELEASED" || *ev.CopyID != cp.ID || ev.ExpiresAt != nil {
				t.Fatalf("want RELEASED, got %+v", ev)
			}
		}

		// Statuses: Paul (on B) sees his own copies only; the admin marks his
		// STAGING copy ready through A.
		paulB := mustDial(t, b, dialOpts{})
		paulB.init(bearer(t2Token))
		st := paulB.subscribe(subStatus, map[string]any{"e": ex.ID})
		snap := nextStatus(t, paulB, st)
		if snap.Kind != "SNAPSHOT" || len(snap.Copies) != 1 || snap.Copies[0].CopyID != staging.ID ||
			snap.Copies[0].Status != "STAGING" {
			t.Fatalf("status snapshot: want only Paul's STAGING copy, got %+v", snap)
		}
		a.As(admin).MustDo(`mutation($c: ID!){ markCopyReady(copyId: $c){ id } }`, map[string]any{"c": staging.ID}, nil)
		ch := nextStatus(t, paulB, st)
		if ch.Kind != "CHANGED" || *ch.CopyID != staging.ID || *ch.Status != "READY" || *ch.PreviousStatus != "STAGING" ||
			*ch.Version != snap.Copies[0].Version+1 {
			t.Fatalf("want CHANGED STAGING→READY at version+1, got %+v", ch)
		}
	})
}

// The same on one instance with the in-memory broker (no Redis needed), plus
// authorization: a teacher who does not correct the exam and a student are
// refused, as in queries; anonymous and bad credentials are refused at init.
func TestRealtimeAuthorization(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newInstance(t, d, "", nil)
		if e.App.Broker.Name() != "memory" {
			t.Fatalf("want the memory broker, got %s", e.App.Broker.Name())
		}
		corrector, _ := e.NewUser(user.RoleTEACHER, "Marie")
		_, outsiderToken := e.NewUser(user.RoleTEACHER, "Hugo")
		_, studentToken := e.NewUser(user.RoleSTUDENT, "Lea")
		ex := e.NewExam(corrector)

		for _, tc := range []struct {
			name, token, query, want string
			vars                     map[string]any
		}{
			{"outsider locks", outsiderToken, subLocks, "FORBIDDEN", map[string]any{"e": ex.ID}},
			{"outsider statuses", outsiderToken, subStatus, "FORBIDDEN", map[string]any{"e": ex.ID}},
			{"student locks", studentToken, subLocks, "FORBIDDEN", map[string]any{"e": ex.ID}},
			{"student statuses", studentToken, subStatus, "FORBIDDEN", map[string]any{"e": ex.ID}},
			{"unknown exam", e.Admin(), subLocks, "NOT_FOUND", map[string]any{"e": "exm_nope"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := mustDial(t, e, dialOpts{})
				c.init(bearer(tc.token))
				id := c.subscribe(tc.query, tc.vars)
				if got := c.errorCode(id); got != tc.want {
					t.Fatalf("want %s, got %s", tc.want, got)
				}
			})
		}

		for _, tc := range []struct {
			name    string
			payload any
		}{
			{"anonymous", nil},
			{"bad token", bearer("not-a-token")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := mustDial(t, e, dialOpts{})
				c.send("connection_init", "", tc.payload)
				if code := c.closeCode(); code != 4403 {
					t.Fatalf("want close 4403, got %d", code)
				}
			})
		}
	})
}

// jobProgress: the job first, then changes (notified, or found by polling),
// and completion after a terminal state; a job of somebody else's is refused.
func TestRealtimeJobProgress(t *testing.T) {
	d := dbtest.Open(t, dialect.SQLite)
	e := newInstance(t, d, "", nil)
	teacher, token := e.NewUser(user.RoleTEACHER, "Marie")
	_, otherToken := e.NewUser(user.RoleTEACHER, "Paul")
	ex := e.NewExam(teacher)
	j, err := d.Client.Job.Create().SetKind(job.KindEXPORT_GRADES).SetState(job.StateRUNNING).
		SetProgressTotal(3).SetExamID(ex.ID).SetRequestedByID(teacher.ID).Save(e.Ctx())
	if err != nil {
		t.Fatal(err)
	}
	pub := realtime.NewPublisher(e.App.Broker, nil)

	c := mustDial(t, e, dialOpts{})
	c.init(bearer(token))
	id := c.subscribe(subJob, map[string]any{"j": j.ID})
	type jobData struct {
		JobProgress struct {
			ID       string
			State    string
			Progress struct{ Done, Total int }
		}
	}
	var got jobData
	c.data(id, &got)
	if got.JobProgress.State != "RUNNING" || got.JobProgress.Progress.Total != 3 {
		t.Fatalf("first message: %+v", got)
	}
	for done := 1; done <= 3; done++ {
		u := j.Update().SetProgressDone(done)
		if done == 3 {
			u.SetState(job.StateSUCCEEDED)
		}
		if _, err := u.Save(e.Ctx()); err != nil {
			t.Fatal(err)
		}
		pub.JobChanged(context.Background(), j.ID)
		c.data(id, &got)
		if got.JobProgress.Progress.Done != done {
			t.Fatalf("want progress %d, got %+v", done, got)
		}
	}
	if got.JobProgress.State != "SUCCEEDED" {
		t.Fatalf("want SUCCEEDED, got %+v", got)
	}
	if m := c.next(); m.Type != "complete" || m.ID != id {
		t.Fatalf("want complete after a terminal state, got %s %s", m.Type, m.Payload)
	}

	other := mustDial(t, e, dialOpts{})
	other.init(bearer(otherToken))
	if code := other.errorCode(other.subscribe(subJob, map[string]any{"j": j.ID})); code != "FORBIDDEN" {
		t.Fatalf("someone else's job: want FORBIDDEN, got %s", code)
	}
}

// Close codes of graphql-ws PROTOCOL.md, through the real server and its
// middleware (wsgorilla does the work; this pins that the wiring keeps it).
func TestWebsocketCloseCodes(t *testing.T) {
	d := dbtest.Open(t, dialect.SQLite)
	e := newInstance(t, d, "", map[string]string{
		"KORRIGO_ALLOWED_ORIGINS": "https://spa.school.example", "KORRIGO_WS_INIT_TIMEOUT": "300ms"})
	teacher, token := e.NewUser(user.RoleTEACHER, "Marie")
	ex := e.NewExam(teacher)
	vars := map[string]any{"e": ex.ID}

	t.Run("4401 subscribe before init", func(t *testing.T) {
		c := mustDial(t, e, dialOpts{})
		c.subscribe(subLocks, vars)
		if code := c.closeCode(); code != 4401 {
			t.Fatalf("want 4401, got %d", code)
		}
	})
	t.Run("4403 rejected auth", func(t *testing.T) {
		c := mustDial(t, e, dialOpts{})
		c.send("connection_init", "", bearer("ksess_forged"))
		if code := c.closeCode(); code != 4403 {
			t.Fatalf("want 4403, got %d", code)
		}
	})
	t.Run("4408 no init", func(t *testing.T) {
		c := mustDial(t, e, dialOpts{})
		if code := c.closeCode(); code != 4408 {
			t.Fatalf("want 4408, got %d", code)
		}
	})
	t.Run("4409 duplicate id", func(t *testing.T) {
		c := mustDial(t, e, dialOpts{})
		c.init(bearer(token))
		c.send("subscribe", "same", map[string]any{"query": subLocks, "variables": vars})
		var first struct{ CopyLockChanged lockEvent }
		c.data("same", &first)
		c.send("subscribe", "same", map[string]any{"query": subLocks, "variables": vars})
		if code := c.closeCode(); code != 4409 {
			t.Fatalf("want 4409, got %d", code)
		}
	})
	t.Run("4429 second init", func(t *testing.T) {
		c := mustDial(t, e, dialOpts{})
		c.init(bearer(token))
		c.send("connection_init", "", bearer(token))
		if code := c.closeCode(); code != 4429 {
			t.Fatalf("want 4429, got %d", code)
		}
	})
	t.Run("origin allow-list", func(t *testing.T) {
		h := http.Header{"Origin": {"https://evil.example"}}
		if _, resp, err := dialWS(t, e, dialOpts{header: h}); err == nil {
			t.Fatal("a foreign origin was upgraded")
		} else if resp == nil || resp.StatusCode < 400 {
			t.Fatalf("foreign origin: want an HTTP error, got %v", resp)
		}
		h = http.Header{"Origin": {"https://spa.school.example"}}
		c := mustDial(t, e, dialOpts{header: h})
		c.init(bearer(token))
	})
	t.Run("legacy graphql-ws", func(t *testing.T) {
		c := mustDial(t, e, dialOpts{subprotocol: "graphql-ws"})
		c.init(bearer(token))
		id := c.subscribe(subLocks, vars)
		if s := nextLock(t, c, id); s.Kind != "SNAPSHOT" {
			t.Fatalf("want SNAPSHOT, got %+v", s)
		}
	})
}

// Shutdown closes every socket (http.Server.Shutdown alone would not) and
// Serve returns.
func TestWebsocketShutdown(t *testing.T) {
	d := dbtest.Open(t, dialect.SQLite)
	cfg, err := server.LoadConfig(func(k string) string {
		if k == "KORRIGO_DATA_DIR" {
			return t.TempDir()
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	app, err := server.NewAppWithDB(cfg, zaptest.NewLogger(t), d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Broker.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()
	e := &servertest.Env{T: t, DB: d, App: app, Server: &httptest.Server{URL: "http://" + ln.Addr().String()},
		Statements: &servertest.Counter{}}
	teacher, token := e.NewUser(user.RoleTEACHER, "Marie")
	ex := e.NewExam(teacher)
	c := mustDial(t, e, dialOpts{})
	c.init(bearer(token))
	id := c.subscribe(subLocks, map[string]any{"e": ex.ID})
	nextLock(t, c, id)

	stop()
	if code := c.closeCode(); code != 1000 && code != 1001 {
		t.Fatalf("want a normal close on shutdown, got %d", code)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(wsWait):
		t.Fatal("Serve did not return")
	}
}

// The periodic re-check (KORRIGO_WS_AUTH_INTERVAL) closes with 4403 the
// sockets whose credential ended without a hint (credentials ended through
// the API publish one: TestWebsocketClosedWhenCredentialRevoked): an expired
// session, an API token revoked and a user deactivated or given another role
// in the database directly. The socket of a credential still valid stays open.
func TestWebsocketClosedWhenCredentialEnds(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := newInstance(t, d, "", map[string]string{"KORRIGO_WS_AUTH_INTERVAL": "50ms"})
		marie, expiring := e.NewUser(user.RoleTEACHER, "Marie")
		paul, deactivated := e.NewUser(user.RoleTEACHER, "Paul")
		lucie, promoted := e.NewUser(user.RoleTEACHER, "Lucie")
		ex := e.NewExam(marie, paul, lucie)
		keeper := e.Login(marie.Email, servertest.Password)
		var tok struct {
			CreateApiToken struct {
				Token    string
				APIToken struct{ ID string } `json:"apiToken"`
			}
		}
		e.As(keeper).MustDo(`mutation { createApiToken(input: {name: "sync", scopes: ["read"]}) { token apiToken { id } } }`,
			nil, &tok)
		cExpiring, cToken, cDeactivated := openLocks(t, e, expiring, ex.ID),
			openLocks(t, e, tok.CreateApiToken.Token, ex.ID), openLocks(t, e, deactivated, ex.ID)
		cPromoted, cKeeper := openLocks(t, e, promoted, ex.ID), openLocks(t, e, keeper, ex.ID)

		sys := rules.System(context.Background())
		a, err := e.App.Services.Auth.Authenticate(sys, expiring)
		if err != nil {
			t.Fatal(err)
		}
		for what, change := range map[string]struct {
			c   *wsConn
			run func() error
		}{
			"expiry": {cExpiring, func() error {
				return d.Client.Session.UpdateOneID(a.SessionID).SetExpiresAt(time.Now().Add(-time.Second)).Exec(sys)
			}},
			"token revoked": {cToken, func() error {
				return d.Client.ApiToken.UpdateOneID(tok.CreateApiToken.APIToken.ID).SetRevokedAt(time.Now()).Exec(sys)
			}},
			"user deactivated": {cDeactivated, func() error { return d.Client.User.UpdateOneID(paul.ID).SetActive(false).Exec(sys) }},
			"role changed": {cPromoted, func() error {
				return d.Client.User.UpdateOneID(lucie.ID).SetRole(user.RoleADMIN).Exec(sys)
			}},
		} {
			if err := change.run(); err != nil {
				t.Fatal(err)
			}
			if code := change.c.closeCode(); code != 4403 {
				t.Fatalf("%s: want 4403, got %d", what, code)
			}
		}
		// Several checks have run since keeper's session was last seen live.
		stillOpen(t, cKeeper, "the valid session's socket", ex.ID)
	})
}

// One lock event reaches several sockets through one render per operation and
// viewer class (sharedRenders): every subscriber still gets what its own
// query selects, byte for byte what an unshared render of the same operation
// gives, and an admin's render is not a teacher's.
func TestRealtimeSharedRenders(t *testing.T) {
	d := dbtest.Open(t, dialect.SQLite)
	e := newInstance(t, d, "", nil)
	teacher, token := e.NewUser(user.RoleTEACHER, "Marie")
	ex := e.NewExam(teacher)
	cp := e.NewCopy(ex, servertest.CopyOpts{Corrector: teacher})
	vars := map[string]any{"e": ex.ID}
	const (
		// Same operation as subLocks but another document: its own render.
		subLocksAgain = `subscription Again($e: ID!){ copyLockChanged(examId: $e){
			kind examId copyId owner { id name } expiresAt at locks { copyId owner { id name } expiresAt } } }`
		subLocksAliased = `subscription($e: ID!){ l: copyLockChanged(examId: $e){ k: kind copyId who: owner { name } } }`
	)

	type socket struct {
		c  *wsConn
		id string
	}
	open := func(token, query string) socket {
		c := mustDial(t, e, dialOpts{})
		c.init(bearer(token))
		id := c.subscribe(query, vars)
		if m := c.next(); m.Type != "next" || m.ID != id { // the snapshot
			t.Fatalf("want the snapshot, got %s %s", m.Type, m.Payload)
		}
		return socket{c, id}
	}
	teachers := []socket{open(token, subLocks), open(token, subLocks), open(token, subLocks)}
	again := open(token, subLocksAgain)
	aliased := open(token, subLocksAliased)
	admins := []socket{open(e.Admin(), subLocks), open(e.Admin(), subLocks)}
	adminAliased := open(e.Admin(), subLocksAliased)

	acquire(t, e, token, cp.ID)
	payload := func(s socket) string {
		t.Helper()
		m := s.c.next()
		if m.Type != "next" || m.ID != s.id {
			t.Fatalf("want the event, got %s %s %s", m.Type, m.ID, m.Payload)
		}
		return string(m.Payload)
	}
	want := payload(again) // rendered for that socket alone
	var ev struct {
		Data struct{ CopyLockChanged lockEvent }
	}
	if err := json.Unmarshal([]byte(want), &ev); err != nil {
		t.Fatal(err)
	}
	if got := ev.Data.CopyLockChanged; got.Kind != "ACQUIRED" || got.CopyID == nil || *got.CopyID != cp.ID ||
		got.Owner == nil || got.Owner.Name != "Marie" {
		t.Fatalf("event %s", want)
	}
	for i, s := range append(teachers, admins...) {
		if got := payload(s); got != want {
			t.Fatalf("socket %d got %s, want %s", i, got, want)
		}
	}
	// Five sockets of two classes share the render of subLocks: three
	// teachers' and two admins', one of each rendered, the rest shared.
	if n := metricValue(t, e, `korrigo_graphql_subscription_renders_total{render="shared"}`); n != 3 {
		t.Fatalf("%v events sent from another subscriber's render, want 3", n)
	}
	wantAliased := fmt.Sprintf(`{"data":{"l":{"k":"ACQUIRED","copyId":%q,"who":{"name":"Marie"}}}}`, cp.ID)
	for _, s := range []socket{aliased, adminAliased} {
		if got := payload(s); got != wantAliased {
			t.Fatalf("aliased selection got %s, want %s", got, wantAliased)
		}
	}
}

// metricValue reads one series from the instance's /metrics.
func metricValue(t *testing.T, e *servertest.Env, series string) float64 {
	t.Helper()
	resp, err := http.Get(e.Server.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", series)
	return 0
}

// A grading desk's socket (copyLockChanged and copyStatusChanged on its exam)
// costs the server four goroutines: its reader, gqlgen's closeOnCancel and one
// per subscription (gqlgen's). The exam streams park none of their own, and
// the upgrade handler returns. They all end with the socket.
func TestWebsocketGoroutinesPerSocket(t *testing.T) {
	d := dbtest.Open(t, dialect.SQLite)
	e := newInstance(t, d, "", nil)
	teacher, token := e.NewUser(user.RoleTEACHER, "Marie")
	ex := e.NewExam(teacher)
	open := func() *wsConn {
		c := mustDial(t, e, dialOpts{})
		c.init(bearer(token))
		nextLock(t, c, c.subscribe(subLocks, map[string]any{"e": ex.ID}))
		nextStatus(t, c, c.subscribe(subStatus, map[string]any{"e": ex.ID}))
		return c
	}
	open() // starts what is per process: the credential re-check loop…
	// Polled: a handler returns just after the upgrade response is written.
	eventually := func(what string, cond func(goroutines int) bool) {
		t.Helper()
		deadline := time.Now().Add(wsWait)
		for n := runtime.NumGoroutine(); !cond(n); n = runtime.NumGoroutine() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d goroutines", what, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()
	const n = 20
	conns := make([]*wsConn, n)
	for i := range conns {
		conns[i] = open()
	}
	// Each test client parks one reader goroutine of its own in this process.
	eventually(fmt.Sprintf("at most 4 server goroutines per socket (%d before %d sockets)", before, n),
		func(g int) bool { return float64(g-before)/n-1 <= 4 })
	for _, c := range conns {
		_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
		c.closeCode()
	}
	eventually(fmt.Sprintf("the sockets' goroutines to end (%d before)", before), func(g int) bool { return g <= before })
}
