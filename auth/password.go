package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// HashParams are argon2id costs.
type HashParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultHashParams is OWASP's minimum argon2id configuration (19 MiB, 2 passes,
// 1 lane): enough against offline guessing for a school's accounts while a login
// stays around a few tens of milliseconds and the tests stay fast.
var DefaultHashParams = HashParams{Memory: 19456, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// PHC strings use standard base64 without padding.
var phcB64 = base64.RawStdEncoding

var errUnsupportedHash = errors.New("unsupported password hash format")

// hasher hashes and verifies passwords with bounded concurrency.
type hasher struct {
	params HashParams
	slots  chan struct{}
	dummy  func() string
	// runs counts argon2id computations, so tests can check that a login for
	// an unknown email costs what a wrong password costs without timing it.
	runs atomic.Int64
}

func newHasher(p HashParams, concurrency int) *hasher {
	h := &hasher{params: p, slots: make(chan struct{}, concurrency)}
	// The dummy hash is what an unknown email is verified against, so that it
	// costs as much as a wrong password. Computed lazily: NewService stays cheap.
	h.dummy = sync.OnceValue(func() string { return encodeHash(randomSecret(), p) })
	return h
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for a password hashing slot: %w", ctx.Err())
	}
}

func (h *hasher) release() { <-h.slots }

// hash returns the PHC string of password.
func (h *hasher) hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	h.runs.Add(1)
	return encodeHash(password, h.params), nil
}

// verify reports whether password matches encoded, and whether encoded uses
// other costs than the current ones and should be replaced. An empty or
// malformed encoded string is verified against the dummy hash so that the call
// takes the usual time, and never matches.
func (h *hasher) verify(ctx context.Context, password, encoded string) (ok, stale bool, err error) {
	parsed, perr := parseHash(encoded)
	if perr != nil {
		parsed, _ = parseHash(h.dummy())
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	h.runs.Add(1)
	key := argon2.IDKey([]byte(normalize(password)), parsed.salt, parsed.params.Time,
		parsed.params.Memory, parsed.params.Threads, uint32(len(parsed.key)))
	match := subtle.ConstantTimeCompare(key, parsed.key) == 1
	if perr != nil {
		return false, false, nil
	}
	return match, match && parsed.params != h.params, nil
}

// normalize applies NFKC, as NIST SP 800-63B asks, so that the same password
// typed on keyboards producing composed or decomposed accents still matches.
func normalize(password string) string { return norm.NFKC.String(password) }

func encodeHash(password string, p HashParams) string {
	salt := make([]byte, saltLen)
	rand.Read(salt) // never fails: crypto/rand crashes the program instead
	key := argon2.IDKey([]byte(normalize(password)), salt, p.Time, p.Memory, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.Memory, p.Time, p.Threads, phcB64.EncodeToString(salt), phcB64.EncodeToString(key))
}

type parsedHash struct {
	params    HashParams
	salt, key []byte
}

// parseHash reads "$argon2id$v=19$m=…,t=…,p=…$salt$key". Costs are bounded so
// that a corrupted row cannot make a login allocate gigabytes or spin for minutes.
func parseHash(s string) (parsedHash, error) {
	var out parsedHash
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return out, errUnsupportedHash
	}
	costs := strings.Split(parts[3], ",")
	if len(costs) != 3 {
		return out, errUnsupportedHash
	}
	var vals [3]uint64
	for i, prefix := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(costs[i], prefix)
		if !ok {
			return out, errUnsupportedHash
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return out, errUnsupportedHash
		}
		vals[i] = n
	}
	m, t, p := vals[0], vals[1], vals[2]
	if p < 1 || p > 64 || t < 1 || t > 32 || m < 8*p || m > 1<<20 {
		return out, errUnsupportedHash
	}
	salt, err := phcB64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return out, errUnsupportedHash
	}
	key, err := phcB64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 128 {
		return out, errUnsupportedHash
	}
	out.params = HashParams{Memory: uint32(m), Time: uint32(t), Threads: uint8(p)}
	out.salt, out.key = salt, key
	return out, nil
}

// randomSecret returns 32 random bytes, base64url-encoded (43 characters).
func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails: crypto/rand crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}
