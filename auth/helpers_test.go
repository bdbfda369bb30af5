package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/auditlog"
	"github.com/korrigo/korrigo/ent/user"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// cheapHash keeps the many hashes of the tests fast; TestHashFormat covers the
// production costs.
var cheapHash = HashParams{Memory: 1024, Time: 1, Threads: 1}

type fixture struct {
	t     *testing.T
	d     *db.DB
	svc   *Service
	clock *clock
	ctx   context.Context
	admin *ent.User
	// adminCtx acts as the admin through a real login session.
	adminCtx context.Context
}

const (
	adminEmail    = "office@lycee-exemple.fr"
	adminPassword = "violet-tramway-harbour-42"
)

func newFixture(t *testing.T, d *db.DB) *fixture {
	t.Helper()
	f := &fixture{t: t, d: d, clock: newClock(), ctx: context.Background()}
	f.svc = NewService(d.Client, nil, Options{Now: f.clock.Now, Hash: cheapHash})
	admin, _, err := f.svc.CreateAdmin(f.ctx, adminEmail, "Exam Office", adminPassword)
	if err != nil {
		t.Fatalf("create admin: %v", err)
	}
	f.admin = admin
	f.adminCtx = f.loginCtx(adminEmail, adminPassword, "10.0.0.1")
	return f
}

// createUser makes an account with a password, as the admin.
func (f *fixture) createUser(email, name string, role user.Role, password string) *ent.User {
	f.t.Helper()
	u, err := f.svc.CreateUser(f.adminCtx, CreateUserInput{Email: email, Name: name, Role: role, Password: &password})
	if err != nil {
		f.t.Fatalf("create user %s: %v", email, err)
	}
	return u
}

// login logs in and returns the session token.
func (f *fixture) login(email, password, ip string) string {
	f.t.Helper()
	tok, _, _, err := f.svc.Login(f.ctx, email, password, ClientMeta{IP: ip, UserAgent: "test"})
	if err != nil {
		f.t.Fatalf("login %s: %v", email, err)
	}
	return tok
}

// loginCtx logs in and returns a context carrying the authenticated viewer.
func (f *fixture) loginCtx(email, password, ip string) context.Context {
	f.t.Helper()
	return f.authCtx(f.login(email, password, ip))
}

func (f *fixture) authCtx(credential string) context.Context {
	f.t.Helper()
	v, err := f.svc.Authenticate(f.ctx, credential)
	if err != nil {
		f.t.Fatalf("authenticate: %v", err)
	}
	return viewer.NewContext(f.ctx, v)
}

// audits returns the audit rows of action, oldest first.
func (f *fixture) audits(action string) []*ent.AuditLog {
	f.t.Helper()
	rows, err := f.d.Client.AuditLog.Query().Where(auditlog.Action(action)).
		Order(ent.Asc(auditlog.FieldAt), ent.Asc(auditlog.FieldID)).All(rules.System(f.ctx))
	if err != nil {
		f.t.Fatalf("audit rows: %v", err)
	}
	return rows
}

// wantCode fails unless err is a typed error with code (and, when field is not
// empty, that field extension).
func wantCode(t *testing.T, err error, code apperr.Code, field string) *apperr.Error {
	t.Helper()
	var e *apperr.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want %s", err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %s (%s), want %s", e.Code, e.Message, code)
	}
	if field != "" && e.Extensions["field"] != field {
		t.Fatalf("field = %v, want %s (%s)", e.Extensions["field"], field, e.Message)
	}
	return e
}

func ptr[T any](v T) *T { return &v }
