package auth

import (
	"context"
	"fmt"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/ent/apitoken"
	"github.com/korrigo/korrigo/ent/session"
	"github.com/korrigo/korrigo/ent/user"
)

// liveChunk bounds the ids of one query (SQLite's and PostgreSQL's parameter
// limits are far above it).
const liveChunk = 500

// LiveCredentials re-checks credentials that authenticated long-lived
// connections (WebSockets): it returns, for each session id and API token id
// still valid (not revoked, not expired, user active, a student holds no
// token), the role of its user now. An id missing from the map is no longer
// valid. Unlike Authenticate it never extends a session: an open socket is
// not activity.
func (s *Service) LiveCredentials(ctx context.Context, sessionIDs, tokenIDs []string) (map[string]viewer.Role, error) {
	sys := rules.System(ctx)
	now := s.now()
	live := make(map[string]viewer.Role, len(sessionIDs)+len(tokenIDs))
	for ids := range chunks(sessionIDs) {
		sessions, err := s.client.Session.Query().
			Where(session.IDIn(ids...), session.RevokedAtIsNil(), session.ExpiresAtGT(now),
				session.AbsoluteExpiresAtGT(now), session.HasUserWith(user.Active(true))).
			WithUser().All(sys)
		if err != nil {
			return nil, fmt.Errorf("re-check sessions: %w", err)
		}
		for _, se := range sessions {
			live[se.ID] = viewer.Role(se.Edges.User.Role)
		}
	}
	for ids := range chunks(tokenIDs) {
		tokens, err := s.client.ApiToken.Query().
			Where(apitoken.IDIn(ids...), apitoken.RevokedAtIsNil(),
				apitoken.Or(apitoken.ExpiresAtIsNil(), apitoken.ExpiresAtGT(now)),
				apitoken.HasOwnerWith(user.Active(true), user.RoleNEQ(user.RoleSTUDENT))).
			WithOwner().All(sys)
		if err != nil {
			return nil, fmt.Errorf("re-check API tokens: %w", err)
		}
		for _, t := range tokens {
			live[t.ID] = viewer.Role(t.Edges.Owner.Role)
		}
	}
	return live, nil
}

func chunks(ids []string) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(ids) > 0 {
			n := min(len(ids), liveChunk)
			if !yield(ids[:n]) {
				return
			}
			ids = ids[n:]
		}
	}
}
