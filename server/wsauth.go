package server

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/auth"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/server/wsgorilla"
)

// socketAuth re-checks the credential of every open WebSocket: a socket whose
// session was logged out, expired or revoked (password change or reset,
// deactivated user), whose API token was revoked or expired, or whose user
// changed role, is closed with 4403 within one interval (KORRIGO_WS_AUTH_INTERVAL).
// One goroutine per process checks every socket with one query per 500
// distinct credentials, and runs only while sockets are open.
type socketAuth struct {
	authn *auth.Service
	log   *zap.Logger
	every time.Duration

	mu      sync.Mutex
	socks   map[*watchedSocket]struct{}
	running bool
}

// recheckTimeout bounds one round of queries; the next round waits for it.
const recheckTimeout = 10 * time.Second

type watchedSocket struct {
	ctx context.Context // the socket's request context (wsgorilla.Close)
	v   *viewer.Viewer
}

func newSocketAuth(authn *auth.Service, log *zap.Logger, every time.Duration) *socketAuth {
	return &socketAuth{authn: authn, log: log, every: every, socks: map[*watchedSocket]struct{}{}}
}

// watch follows the socket of ctx until ctx ends (the socket closed).
func (a *socketAuth) watch(ctx context.Context, v *viewer.Viewer) {
	if v == nil || (v.SessionID == "" && v.TokenID == "") {
		return
	}
	s := &watchedSocket{ctx: ctx, v: v}
	a.mu.Lock()
	a.socks[s] = struct{}{}
	start := !a.running
	a.running = true
	a.mu.Unlock()
	context.AfterFunc(ctx, func() {
		a.mu.Lock()
		delete(a.socks, s)
		a.mu.Unlock()
	})
	if start {
		go a.loop()
	}
}

func (a *socketAuth) loop() {
	t := time.NewTicker(a.every)
	defer t.Stop()
	for range t.C {
		a.mu.Lock()
		if len(a.socks) == 0 {
			a.running = false
			a.mu.Unlock()
			return
		}
		socks := make([]*watchedSocket, 0, len(a.socks))
		for s := range a.socks {
			socks = append(socks, s)
		}
		a.mu.Unlock()
		a.check(socks)
	}
}

// check closes the sockets whose credential is no longer valid. A failed
// query closes nothing: the next interval retries.
func (a *socketAuth) check(socks []*watchedSocket) {
	seen := map[string]bool{}
	var sessions, tokens []string
	for _, s := range socks {
		switch id := credentialID(s.v); {
		case seen[id]:
		case s.v.SessionID != "":
			sessions = append(sessions, id)
		default:
			tokens = append(tokens, id)
		}
		seen[credentialID(s.v)] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), recheckTimeout)
	defer cancel()
	live, err := a.authn.LiveCredentials(ctx, sessions, tokens)
	if err != nil {
		a.log.Warn("websocket: credential re-check failed; retrying at the next interval", zap.Error(err))
		return
	}
	for _, s := range socks {
		if role, ok := live[credentialID(s.v)]; ok && role == s.v.Role {
			continue
		}
		if wsgorilla.Close(s.ctx, wsgorilla.CloseForbidden, "Forbidden") {
			a.log.Info("websocket closed: its credential is no longer valid", zap.String("user_id", s.v.UserID))
		}
	}
}

func credentialID(v *viewer.Viewer) string {
	if v.SessionID != "" {
		return v.SessionID
	}
	return v.TokenID
}
