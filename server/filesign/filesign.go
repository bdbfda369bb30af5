// Package filesign makes and checks the short-lived signed URLs of files: copy
// PDFs (copy.pdfUrl, copy.finalPdfUrl) and export files (job.downloadUrl). A
// URL names the object (copy or job), the file, the user it was issued to and
// an expiry, under an HMAC-SHA256; the route that serves it also checks the
// caller is that user and may still read the object.
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
	// Export is the file of an EXPORT_GRADES or EXPORT_PDFS job.
	Export = "export"
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

// WithClock returns a copy of s (same key and TTL) reading time from now: tests
// make links that are already expired.
func (s *Signer) WithClock(now func() time.Time) *Signer {
	c := *s
	c.now = now
	return &c
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

// ExportPath is the route prefix of export downloads.
const ExportPath = "/files/exports/"

// ExportURL returns the signed path for userID to download the file of export
// job jobID; filename is the last path segment (for browsers and `curl -O`),
// not part of what is signed.
func (s *Signer) ExportURL(jobID, filename, userID string) string {
	exp := s.now().Add(s.ttl).Unix()
	q := url.Values{}
	q.Set("exp", strconv.FormatInt(exp, 10))
	q.Set("sig", s.sign(jobID, Export, userID, exp))
	return ExportPath + url.PathEscape(jobID) + "/" + url.PathEscape(filename) + "?" + q.Encode()
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
