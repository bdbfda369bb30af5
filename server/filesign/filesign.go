// Package filesign makes and checks the short-lived signed URLs of copy PDFs
// (copy.pdfUrl, copy.finalPdfUrl). A URL names the copy, the file, the user it
// was issued to and an expiry, under an HMAC-SHA256; the route that serves it
// also checks the caller is that user and may still read the copy.
package filesign

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// File kinds.
const (
	Pages = "pages" // the copy's scanned pages (masked for non-admins)
	Final = "final" // the finalized PDF
)

// DefaultTTL is how long a URL stays valid.
const DefaultTTL = 5 * time.Minute

// Signer signs and verifies file URLs.
type Signer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// New returns a Signer with secret as key; an empty secret draws a random
// per-process key (URLs then die with the process and are not valid on other
// replicas: set KORRIGO_FILE_URL_SECRET when running several).
func New(secret string, ttl time.Duration) *Signer {
	key := []byte(secret)
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Signer{key: key, ttl: ttl, now: time.Now}
}

// Path is the route prefix the URLs live under.
const Path = "/files/copies/"

// URL returns the signed path for userID to fetch kind of copyID.
func (s *Signer) URL(copyID, kind, userID string) string {
	exp := s.now().Add(s.ttl).Unix()
	q := url.Values{}
	q.Set("exp", strconv.FormatInt(exp, 10))
	q.Set("sig", s.sign(copyID, kind, userID, exp))
	return Path + url.PathEscape(copyID) + "/" + kind + ".pdf?" + q.Encode()
}

// ErrInvalid: bad, forged or expired signature.
var ErrInvalid = errors.New("invalid or expired file link")

// Verify checks a URL's signature for userID.
func (s *Signer) Verify(copyID, kind, userID, expS, sig string) error {
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil || s.now().Unix() > exp {
		return ErrInvalid
	}
	want := s.sign(copyID, kind, userID, exp)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return ErrInvalid
	}
	return nil
}

func (s *Signer) sign(copyID, kind, userID string, exp int64) string {
	m := hmac.New(sha256.New, s.key)
	fmt.Fprintf(m, "%s\x00%s\x00%s\x00%d", copyID, kind, userID, exp)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
