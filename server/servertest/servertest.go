// Package servertest runs the real HTTP server (middleware, gqlgen handler,
// services) over a test database, and speaks GraphQL to it like a client does.
package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"entgo.io/ent/dialect"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server"
)

// Env is a running server over one test database.
type Env struct {
	T      testing.TB
	DB     *db.DB
	App    *server.App
	Server *httptest.Server
	// Statements counts SQL statements sent through ent since the last Reset.
	Statements *Counter

	adminToken string
}

// Counter counts what reaches the database through ent: statements, and the
// database transactions they cost (an explicit transaction is one, however many
// statements it runs; a statement outside one is its own). It keeps the log of
// the last calls so that a budget test can show what ran.
type Counter struct {
	mu    sync.Mutex
	n     int64 // statements
	xacts int64
	log   []string
}

// counterLogCap bounds the kept log: budgets are about a handful of statements.
const counterLogCap = 200

func (c *Counter) record(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case strings.HasPrefix(line, "driver.Tx("), strings.HasPrefix(line, "driver.BeginTx("):
		c.xacts++ // BEGIN: the statements inside are counted, not as transactions
	case strings.HasPrefix(line, "driver."):
		c.n++
		c.xacts++ // autocommit
	case strings.HasPrefix(line, "Tx(") && strings.Contains(line, ")."):
		c.n++
	default:
		// commit, rollback
	}
	if len(c.log) < counterLogCap {
		c.log = append(c.log, line)
	}
}

// Load returns the statements run since the last Reset.
func (c *Counter) Load() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Transactions returns the database transactions since the last Reset:
// explicit ones plus statements run outside any.
func (c *Counter) Transactions() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.xacts
}

// Log is what ran since the last Reset (the first counterLogCap calls), one line
// each, for failure messages.
func (c *Counter) Log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.log, "\n")
}

// Reset sets the counts to zero and clears the log.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n, c.xacts, c.log = 0, 0, nil
}

// Steady is the number of statements one call of request runs, without the
// write that slides a session's expiry: it measures two calls and keeps the
// smaller count. That write happens at most once per auth TouchInterval (a
// minute), so on a slow machine it can fall on any request of a test, but on
// one of two consecutive ones at most.
func (c *Counter) Steady(request func()) int64 {
	n := int64(math.MaxInt64)
	for range 2 {
		c.Reset()
		request()
		n = min(n, c.Load())
	}
	return n
}

// TestRateLimits are the rates servertest runs with unless a test sets its
// own: high enough that suites racing hundreds of operations as one user from
// one address never meet them (the limits themselves stay on).
var TestRateLimits = map[string]string{
	"KORRIGO_RATE_ANONYMOUS": "100000-M", "KORRIGO_RATE_OPERATIONS": "1000000-M",
	"KORRIGO_RATE_MUTATIONS": "1000000-M", "KORRIGO_RATE_WEBSOCKET": "100000-M",
}

// New starts a server over d. Every ent statement is counted (for N+1 tests).
func New(t testing.TB, d *db.DB) *Env {
	t.Helper()
	return NewWithEnv(t, d, nil)
}

// NewWithEnv is New with configuration variables (KORRIGO_*) set for this
// server only, over TestRateLimits and the defaults.
func NewWithEnv(t testing.TB, d *db.DB, env map[string]string) *Env {
	t.Helper()
	counter := &Counter{}
	drv := dialect.DebugWithContext(db.NewDriver(d.Dialect, d.SQL), func(_ context.Context, args ...any) {
		counter.record(fmt.Sprint(args...))
	})
	counted := &db.DB{Client: ent.NewClient(ent.Driver(drv)), SQL: d.SQL, Dialect: d.Dialect}
	cfg, err := server.LoadConfig(func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "KORRIGO_DATA_DIR" {
			return t.TempDir()
		}
		return TestRateLimits[k]
	})
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	var opts []zaptest.LoggerOption
	if _, bench := t.(*testing.B); bench {
		opts = append(opts, zaptest.Level(zap.WarnLevel)) // one log line per request would dominate
	}
	app, err := server.NewAppWithDB(cfg, zaptest.NewLogger(t, opts...), counted)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	srv := httptest.NewServer(app.Handler)
	t.Cleanup(srv.Close)
	return &Env{T: t, DB: counted, App: app, Server: srv, Statements: counter}
}

// Ctx is a context in which tests read and write the database directly.
func (e *Env) Ctx() context.Context { return rules.System(context.Background()) }

// Response is a GraphQL response.
type Response struct {
	Status int
	Data   json.RawMessage `json:"data"`
	Errors []Error         `json:"errors"`
}

// Error is one GraphQL error.
type Error struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code is the error's extensions.code.
func (e Error) Code() string { s, _ := e.Extensions["code"].(string); return s }

// Client calls the server as one caller.
type Client struct {
	env   *Env
	Token string
	// Header is added to every request.
	Header http.Header
}

// Anonymous is a client without credentials.
func (e *Env) Anonymous() *Client { return &Client{env: e, Header: http.Header{}} }

// As is a client with a bearer token.
func (e *Env) As(token string) *Client { return &Client{env: e, Token: token, Header: http.Header{}} }

// Do posts a GraphQL operation and decodes the response (it never fails the test
// on GraphQL errors: callers assert on them).
func (c *Client) Do(query string, vars map[string]any) Response {
	c.env.T.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequest(http.MethodPost, c.env.Server.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		c.env.T.Fatalf("servertest: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	return c.send(req)
}

// Upload posts a GraphQL multipart request (the upload spec's operations,
// map and one file) with the file as $file, and decodes the response like Do.
func (c *Client) Upload(query string, vars map[string]any, name string, data []byte) Response {
	c.env.T.Helper()
	if vars == nil {
		vars = map[string]any{}
	}
	vars["file"] = nil
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	ops, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	_ = mw.WriteField("operations", string(ops))
	_ = mw.WriteField("map", `{"0":["variables.file"]}`)
	fw, _ := mw.CreateFormFile("0", name)
	_, _ = fw.Write(data)
	_ = mw.Close()
	req, err := http.NewRequest(http.MethodPost, c.env.Server.URL+"/graphql", &body)
	if err != nil {
		c.env.T.Fatalf("servertest: %v", err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return c.send(req)
}

// send adds the client's headers and credential to req, sends it and
// decodes the GraphQL response.
func (c *Client) send(req *http.Request) Response {
	c.env.T.Helper()
	for k, v := range c.Header {
		req.Header[k] = v
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.env.T.Fatalf("servertest: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := Response{Status: resp.StatusCode}
	if err := json.Unmarshal(raw, &out); err != nil {
		c.env.T.Fatalf("servertest: status %d, undecodable body %q: %v", resp.StatusCode, raw, err)
	}
	return out
}

// MustDo is Do that fails the test on any GraphQL error and decodes data into out.
func (c *Client) MustDo(query string, vars map[string]any, out any) {
	c.env.T.Helper()
	r := c.Do(query, vars)
	if len(r.Errors) > 0 {
		c.env.T.Fatalf("unexpected GraphQL errors: %+v", r.Errors)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			c.env.T.Fatalf("decode %s: %v", r.Data, err)
		}
	}
}

// ErrorCode returns the code of the only error of r, failing the test otherwise.
func (e *Env) ErrorCode(r Response) string {
	e.T.Helper()
	if len(r.Errors) != 1 {
		e.T.Fatalf("want exactly one error, got %+v (data %s)", r.Errors, r.Data)
	}
	return r.Errors[0].Code()
}

// Password is the password of every user made by NewUser and of the admin.
const Password = "correct horse battery staple 42"

// AdminEmail is the first admin's email.
const AdminEmail = "exam.office@school.example"

// Admin returns the first admin's session token (created on first use).
func (e *Env) Admin() string {
	e.T.Helper()
	if e.adminToken == "" {
		if _, _, _, err := e.App.Services.Auth.EnsureFirstAdmin(context.Background(), AdminEmail, Password); err != nil {
			e.T.Fatalf("servertest: first admin: %v", err)
		}
		e.adminToken = e.Login(AdminEmail, Password)
	}
	return e.adminToken
}

// Login returns a session token through the login mutation.
func (e *Env) Login(email, password string) string {
	e.T.Helper()
	var data struct {
		Login struct{ Token string } `json:"login"`
	}
	e.Anonymous().MustDo(`mutation($e:String!,$p:String!){ login(email:$e, password:$p){ token } }`,
		map[string]any{"e": email, "p": password}, &data)
	return data.Login.Token
}

// NewUser creates an active user through the createUser mutation (as the admin)
// and returns it with a session token obtained through login.
func (e *Env) NewUser(role user.Role, name string) (*ent.User, string) {
	e.T.Helper()
	email := fmt.Sprintf("%s.%d@school.example", name, userSeq.Add(1))
	var data struct {
		CreateUser struct{ ID string } `json:"createUser"`
	}
	e.As(e.Admin()).MustDo(`mutation($in: CreateUserInput!){ createUser(input: $in){ id } }`,
		map[string]any{"in": map[string]any{"email": email, "name": name, "role": string(role), "password": Password}}, &data)
	u, err := e.DB.Client.User.Get(e.Ctx(), data.CreateUser.ID)
	if err != nil {
		e.T.Fatalf("servertest: %v", err)
	}
	return u, e.Login(email, Password)
}

var userSeq atomic.Int64

// PostRaw posts an operation and returns the raw HTTP response (for headers and
// cookies); the body is drained and closed.
func (e *Env) PostRaw(query string, vars map[string]any) *http.Response {
	e.T.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	resp, err := http.Post(e.Server.URL+"/graphql", "application/json", bytes.NewReader(body))
	if err != nil {
		e.T.Fatalf("servertest: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}
