// Package apperr defines the typed errors of the API. Services return them; the
// GraphQL error presenter turns them into `extensions.code` (DESIGN.md §11). Any
// other error is internal: logged with the request id, never shown.
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Code is one of the contract's error codes.
type Code string

const (
	Unauthenticated   Code = "UNAUTHENTICATED"
	Forbidden         Code = "FORBIDDEN"
	NotFound          Code = "NOT_FOUND"
	BadUserInput      Code = "BAD_USER_INPUT"
	Locked            Code = "LOCKED"
	LockRequired      Code = "LOCK_REQUIRED"
	VersionConflict   Code = "VERSION_CONFLICT"
	InvalidTransition Code = "INVALID_TRANSITION"
	InvalidPDF        Code = "INVALID_PDF"
	PayloadTooLarge   Code = "PAYLOAD_TOO_LARGE"
	RateLimited       Code = "RATE_LIMITED"
	QueryTooComplex   Code = "QUERY_TOO_COMPLEX"
	InternalError     Code = "INTERNAL_SERVER_ERROR"
)

// Error is an error the client may see.
type Error struct {
	Code       Code
	Message    string
	Extensions map[string]any
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Is makes errors.Is(err, &Error{Code: X}) match on the code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == ""
}

// With returns a copy of e carrying an extra extension.
func (e *Error) With(key string, value any) *Error {
	ext := make(map[string]any, len(e.Extensions)+1)
	for k, v := range e.Extensions {
		ext[k] = v
	}
	ext[key] = value
	return &Error{Code: e.Code, Message: e.Message, Extensions: ext}
}

// New builds an Error.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err, or InternalError when err is not typed.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return InternalError
}

// HasCode reports whether err is a typed error with code c.
func HasCode(err error, c Code) bool { return err != nil && CodeOf(err) == c }

// Frequent constructors.

func Unauthenticatedf(format string, args ...any) *Error {
	return New(Unauthenticated, format, args...)
}
func Forbiddenf(format string, args ...any) *Error { return New(Forbidden, format, args...) }
func NotFoundf(format string, args ...any) *Error  { return New(NotFound, format, args...) }
func BadInputf(format string, args ...any) *Error  { return New(BadUserInput, format, args...) }
func InvalidTransitionf(format string, args ...any) *Error {
	return New(InvalidTransition, format, args...)
}

// BadField is BAD_USER_INPUT naming the offending argument.
func BadField(field, format string, args ...any) *Error {
	return BadInputf(format, args...).With("field", field)
}

// LockOwner is the public view of who holds a lease.
type LockOwner struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// LockedBy is LOCKED with the holder and the lease's expiry.
func LockedBy(owner LockOwner, expiresAt time.Time) *Error {
	return New(Locked, "the copy is being graded by %s", owner.Name).
		With("lock", map[string]any{"owner": owner, "expiresAt": expiresAt.UTC().Format(time.RFC3339Nano)})
}

// LockRequiredf is LOCK_REQUIRED: a missing, wrong or expired lease token.
func LockRequiredf(format string, args ...any) *Error { return New(LockRequired, format, args...) }

// Conflict is VERSION_CONFLICT with the stored version.
func Conflict(current int, format string, args ...any) *Error {
	return New(VersionConflict, format, args...).With("currentVersion", current)
}

// PasswordChangeRequired refuses a session whose temporary password has not been
// replaced yet (the contract has no code of its own for it).
func PasswordChangeRequired() *Error {
	return Forbiddenf("change your temporary password first").With("reason", "PASSWORD_CHANGE_REQUIRED")
}
