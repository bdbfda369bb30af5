package server

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/auth"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/pubsub"
	"github.com/korrigo/korrigo/server/httpctx"
	"github.com/korrigo/korrigo/server/wsgorilla"
)

// socketAuth closes with 4403 every open WebSocket whose credential ended: a
// session logged out, expired or revoked (password change or reset,
// deactivated user), an API token revoked or expired, a user whose role
// changed. The database decides (auth.Service.LiveCredentials, one query per
// 500 distinct credentials, never extending a session); two things make it
// look:
//
//   - a hint on credentialsTopic, published after the commit by whichever
//     replica ended a credential (auth.Options.CredentialsChanged): the
//     sockets of that user are checked at once. A Resync (Redis reconnected:
//     hints may have been lost) or an unreadable hint checks every socket.
//   - every KORRIGO_WS_AUTH_INTERVAL, every socket: the safety net for what
//     publishes no hint (expiry, changes made in the database directly) and
//     for hints lost to a failed publish or a failed check.
//
// One goroutine per process does the checks, and runs only while sockets are
// open. The broker calls hint on the publishing goroutine (no goroutine of its
// own): it only marks the user and wakes that loop.
type socketAuth struct {
	authn *auth.Service
	log   *zap.Logger
	every time.Duration
	// remember is how long a hint is kept for sockets not watched yet: one
	// authenticated before a revocation may be watched only after its hint
	// was handled (the session cookie is checked at the upgrade, the socket
	// is watched at connection_init, up to the init timeout later).
	remember time.Duration
	now      func() time.Time
	close    func(ctx context.Context) bool // closes the socket of ctx with 4403
	wake     chan struct{}                  // capacity 1: a round is due

	mu        sync.Mutex
	socks     map[*watchedSocket]struct{}
	running   bool
	dirty     map[string]struct{} // users whose sockets the next round checks (while running)
	dirtyAll  bool
	recent    map[string]time.Time // user → last hint, kept for remember
	recentAll time.Time            // last Resync
	pruneAt   int
}

// recheckTimeout bounds one round of queries; the next round waits for it.
const recheckTimeout = 10 * time.Second

// credentialsTopic carries auth.Options.CredentialsChanged between replicas.
const credentialsTopic = "auth.credentials"

// credentialsPublishTimeout bounds the publish of a hint: it runs on the
// request path of a logout, after the commit, and a stalled Redis must not
// stall the logout. A lost hint leaves the periodic check.
const credentialsPublishTimeout = 2 * time.Second

// minPrune is the size of recent below which it is not pruned.
const minPrune = 64

type credentialsHint struct {
	UserID string `json:"userId"`
}

type watchedSocket struct {
	ctx context.Context // the socket's request context (wsgorilla.Close)
	v   *viewer.Viewer
}

func newSocketAuth(authn *auth.Service, log *zap.Logger, every, initTimeout time.Duration) *socketAuth {
	if initTimeout <= 0 {
		initTimeout = DefaultWSInitTimeout
	}
	return &socketAuth{
		authn: authn, log: log, every: every, remember: initTimeout + time.Minute, now: time.Now,
		close: func(ctx context.Context) bool {
			return wsgorilla.Close(ctx, wsgorilla.CloseForbidden, "Forbidden")
		},
		wake:  make(chan struct{}, 1),
		socks: map[*watchedSocket]struct{}{}, dirty: map[string]struct{}{}, recent: map[string]time.Time{},
		pruneAt: minPrune,
	}
}

// publishCredentialsChanged is auth.Options.CredentialsChanged for a serve
// process: it tells the socketAuth of every process sharing broker. A failed
// publish is logged and the operation stands: the periodic check closes the
// sockets instead.
func publishCredentialsChanged(broker pubsub.Broker, log *zap.Logger) func(ctx context.Context, userID string) {
	return func(ctx context.Context, userID string) {
		payload, err := json.Marshal(credentialsHint{UserID: userID})
		if err != nil {
			log.Error("websocket: encode credential hint", zap.String("user_id", userID), zap.Error(err))
			return
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), credentialsPublishTimeout)
		defer cancel()
		if err := broker.Publish(pctx, credentialsTopic, payload); err != nil {
			log.Warn("websocket: publish of a credential change failed; the user's sockets close at the next periodic re-check",
				zap.String("user_id", userID), zap.String("request_id", httpctx.RequestID(ctx)), zap.Error(err))
		}
	}
}

// listen follows the hints of every process on broker until it closes.
func (a *socketAuth) listen(broker pubsub.Broker) error {
	// Subscribed for the process's life, not only while sockets are open:
	// a socket opened right after a revocation must still find its hint
	// (recent), and a subscribe per first socket would be a Redis round
	// trip on that socket's path. Idle, it costs a map entry and no goroutine.
	_, err := broker.SubscribeFunc(context.Background(), credentialsTopic, a.hint, func() {
		a.log.Debug("websocket: credential hints ended with the broker; the periodic re-check remains")
	})
	if err != nil {
		return fmt.Errorf("subscribe to credential changes: %w", err)
	}
	return nil
}

// hint is the broker's callback: it runs on the publishing goroutine (the
// Redis reader's, or a logout's), so it never blocks and reads nothing.
func (a *socketAuth) hint(m pubsub.Message) {
	userID := ""
	if !m.Resync {
		var h credentialsHint
		if err := json.Unmarshal(m.Payload, &h); err != nil || h.UserID == "" {
			a.log.Warn("websocket: unreadable credential hint; re-checking every socket",
				zap.Int("bytes", len(m.Payload)), zap.Error(err))
		} else {
			userID = h.UserID
		}
	}
	a.mu.Lock()
	now := a.now()
	if userID == "" {
		a.recentAll = now
		a.dirtyAll = a.running
	} else {
		a.rememberLocked(userID, now)
		if a.running { // without sockets, recent is enough
			a.dirty[userID] = struct{}{}
		}
	}
	running := a.running
	a.mu.Unlock()
	if running {
		a.wakeUp()
	}
}

func (a *socketAuth) wakeUp() {
	select {
	case a.wake <- struct{}{}:
	default: // a round is already due; it will see this hint
	}
}

func (a *socketAuth) rememberLocked(userID string, now time.Time) {
	a.recent[userID] = now
	if len(a.recent) < a.pruneAt {
		return
	}
	for id, at := range a.recent {
		if now.Sub(at) >= a.remember {
			delete(a.recent, id)
		}
	}
	a.pruneAt = max(minPrune, 2*len(a.recent))
}

func (a *socketAuth) hintedLocked(userID string, now time.Time) bool {
	if now.Sub(a.recentAll) < a.remember {
		return true
	}
	at, ok := a.recent[userID]
	return ok && now.Sub(at) < a.remember
}

// watch follows the socket of ctx until ctx ends (the socket closed).
func (a *socketAuth) watch(ctx context.Context, v *viewer.Viewer) {
	if v == nil || (v.SessionID == "" && v.TokenID == "") {
		return
	}
	s := &watchedSocket{ctx: ctx, v: v}
	a.mu.Lock()
	a.socks[s] = struct{}{}
	// Its credential may have been checked before a hint that was handled
	// before it got here: check it again, whatever the hint's order.
	hinted := a.hintedLocked(v.UserID, a.now())
	if hinted {
		a.dirty[v.UserID] = struct{}{}
	}
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
	if hinted {
		a.wakeUp()
	}
}

func (a *socketAuth) loop() {
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		all := false
		select {
		case <-t.C:
			all = true
		case <-a.wake:
		}
		socks, open := a.due(all)
		if !open {
			return
		}
		if len(socks) > 0 {
			a.check(socks)
		}
	}
}

// due takes the sockets of this round: every socket at a tick or after a
// Resync, otherwise those of the users hinted since the last round. open is
// false when no socket is left: the loop ends, and the next socket starts it.
func (a *socketAuth) due(all bool) (socks []*watchedSocket, open bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	all = all || a.dirtyAll
	if len(a.socks) == 0 {
		a.running = false
		all = false
	}
	for s := range a.socks {
		if _, ok := a.dirty[s.v.UserID]; all || ok {
			socks = append(socks, s)
		}
	}
	a.dirtyAll = false
	clear(a.dirty)
	return socks, a.running
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
		if a.close(s.ctx) {
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
