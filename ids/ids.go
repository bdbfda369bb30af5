// Package ids makes the opaque, prefixed identifiers of every Korrigo entity.
//
// An id is "<prefix>_<26 base32 chars>": the prefix tells node(id) which table to
// read without a global id table, and the random part (128 bits) cannot be guessed
// or enumerated by an integrator walking ids.
package ids

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
)

// Prefixes of each entity type. Changing one invalidates every stored id.
const (
	User               = "usr"
	Student            = "stu"
	Exam               = "exm"
	Copy               = "cpy"
	CopyLock           = "lck"
	Draft              = "drf"
	Annotation         = "ann"
	AnnotationRevision = "anr"
	QuestionScore      = "qsc"
	GradingEvent       = "evt"
	AuditLog           = "aud"
	APIToken           = "tok"
	Session            = "ses"
	Blob               = "blb"
	Job                = "job"
)

// tables maps a prefix to the table that node(id) reads (ent's node resolver
// dispatches on table names).
var tables = map[string]string{
	User: "users", Student: "students", Exam: "exams", Copy: "copies", CopyLock: "copy_locks",
	Draft: "drafts", Annotation: "annotations", AnnotationRevision: "annotation_revisions",
	QuestionScore: "question_scores", GradingEvent: "grading_events", AuditLog: "audit_logs",
	APIToken: "api_tokens", Session: "sessions", Blob: "blobs", Job: "jobs",
}

var encoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// New returns a fresh random id with the given prefix.
func New(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ panics itself).
		panic(fmt.Sprintf("ids: crypto/rand: %v", err))
	}
	return prefix + "_" + encoding.EncodeToString(b[:])
}

// Generator returns a default function for an ent id field.
func Generator(prefix string) func() string {
	return func() string { return New(prefix) }
}

// Table returns the table of an id, or an error for a malformed id.
func Table(id string) (string, error) {
	prefix, rest, ok := strings.Cut(id, "_")
	name, known := tables[prefix]
	if !ok || !known || len(rest) != 26 {
		return "", fmt.Errorf("ids: malformed id %q", id)
	}
	return name, nil
}

// Valid reports whether id is well formed and has the given prefix.
func Valid(id, prefix string) bool {
	t, err := Table(id)
	return err == nil && strings.HasPrefix(id, prefix+"_") && t != ""
}
