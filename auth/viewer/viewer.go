// Package viewer carries the identity of the caller through a request context.
// It is deliberately tiny and free of storage imports so that the ent privacy rules,
// the services and the HTTP middleware can all depend on it.
package viewer

import (
	"context"
	"slices"
)

// Role mirrors the user roles of the data model.
type Role string

const (
	RoleAdmin   Role = "ADMIN"
	RoleTeacher Role = "TEACHER"
	RoleStudent Role = "STUDENT"
)

// Scopes an API token can carry. A session carries every scope of its role.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// Viewer is the authenticated caller.
type Viewer struct {
	UserID             string
	Name               string
	Role               Role
	SessionID          string   // set for cookie/bearer sessions
	TokenID            string   // set for API tokens
	Scopes             []string // nil for sessions: everything the role allows
	MustChangePassword bool
}

// IsAdmin reports whether the viewer is an admin.
func (v *Viewer) IsAdmin() bool { return v != nil && v.Role == RoleAdmin }

// IsTeacher reports whether the viewer is a teacher.
func (v *Viewer) IsTeacher() bool { return v != nil && v.Role == RoleTeacher }

// IsStudent reports whether the viewer is a student.
func (v *Viewer) IsStudent() bool { return v != nil && v.Role == RoleStudent }

// CanWrite reports whether the credential may change data: sessions can, API
// tokens only with the write scope.
func (v *Viewer) CanWrite() bool {
	if v == nil {
		return false
	}
	return v.TokenID == "" || slices.Contains(v.Scopes, ScopeWrite)
}

type ctxKey struct{}

// NewContext returns ctx carrying v.
func NewContext(ctx context.Context, v *Viewer) context.Context {
	return context.WithValue(ctx, ctxKey{}, v)
}

// FromContext returns the viewer of ctx, or nil when anonymous.
func FromContext(ctx context.Context) *Viewer {
	v, _ := ctx.Value(ctxKey{}).(*Viewer)
	return v
}
