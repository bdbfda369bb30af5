// Package storage is Korrigo's blob store: immutable files on the local
// filesystem, named by the SHA-256 of their content (root/ab/cd/<sha256>).
//
// Content addressing makes writes idempotent: storing the same bytes twice,
// even concurrently, yields one file and the same Ref. A blob becomes visible
// only by an atomic rename after its bytes are on disk, so a reader never sees
// a partial file and a crash leaves at most a temp file under root/.tmp.
//
// Nothing here knows which blobs are referenced; a garbage collector lists
// blobs (List) and deletes those the database no longer points to. Put
// refreshes the modification time of a blob it finds already stored, so a
// collector that spares recently modified blobs cannot delete one that a
// concurrent Put has just handed out.
package storage

import (
	"errors"
)

var (
	// ErrNotFound: no blob with that hash.
	ErrNotFound = errors.New("storage: blob not found")
	// ErrTooLarge: the input exceeded Put's maxBytes; nothing was stored.
	ErrTooLarge = errors.New("storage: blob too large")
	// ErrInvalidSHA: not 64 lowercase hexadecimal characters.
	ErrInvalidSHA = errors.New("storage: invalid sha256")
)

// Ref identifies a stored blob.
type Ref struct {
	SHA256 string // lowercase hex
	Size   int64  // bytes
}

// ValidSHA256 reports whether s is a blob name: exactly 64 lowercase hex
// digits. Only lowercase is accepted so that one blob has one name, and
// nothing else can reach the filesystem (no separators, no "..").
func ValidSHA256(s string) bool {
	return len(s) == 64 && isLowerHex(s)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
