package auth

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/user"
)

var hashRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashFormat(t *testing.T) {
	ctx := context.Background()
	h := newHasher(DefaultHashParams, 1)
	enc, err := h.hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") || !hashRE.MatchString(enc) {
		t.Fatalf("hash = %q", enc)
	}
	if again, _ := h.hash(ctx, "correct horse battery staple"); again == enc {
		t.Fatal("two hashes of one password share a salt")
	}
	for _, c := range []struct {
		password, encoded string
		ok                bool
	}{
		{"correct horse battery staple", enc, true},
		{"correct horse battery stapl", enc, false},
		{"", enc, false},
		{"x", "", false},
		{"x", "$2a$10$bcrypt-is-not-supported", false},
		{"x", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA", false},
	} {
		ok, stale, err := h.verify(ctx, c.password, c.encoded)
		if err != nil || ok != c.ok || stale {
			t.Errorf("verify(%q, %q) = %v, %v, %v; want %v", c.password, c.encoded, ok, stale, err, c.ok)
		}
	}
	// NFKC: a decomposed "é" matches the composed one.
	accented, _ := h.hash(ctx, "caf\u00e9 au lait du matin")
	if ok, _, _ := h.verify(ctx, "cafe\u0301 au lait du matin", accented); !ok {
		t.Fatal("composed and decomposed accents must verify alike")
	}
	// A hash with other costs verifies and is reported stale.
	cheap, _ := newHasher(cheapHash, 1).hash(ctx, "correct horse battery staple")
	if ok, stale, _ := h.verify(ctx, "correct horse battery staple", cheap); !ok || !stale {
		t.Fatalf("cheap hash: ok %v stale %v, want true true", ok, stale)
	}
}

func TestLoginUpgradesStaleHash(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d) // hashes with cheapHash
		f.createUser(teacherEmail, "Marie Curie", user.RoleTEACHER, teacherPassword)
		stronger := HashParams{Memory: 2048, Time: 1, Threads: 1}
		svc := NewService(d.Client, nil, Options{Now: f.clock.Now, Hash: stronger})
		if _, _, _, err := svc.Login(f.ctx, teacherEmail, teacherPassword, ClientMeta{}); err != nil {
			t.Fatal(err)
		}
		u, err := d.Client.User.Query().Where(user.Email(teacherEmail)).Only(rules.System(f.ctx))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=2048,t=1,p=1$") {
			t.Fatalf("hash not upgraded: %q", u.PasswordHash)
		}
		if _, _, _, err := svc.Login(f.ctx, teacherEmail, teacherPassword, ClientMeta{}); err != nil {
			t.Fatalf("login after upgrade: %v", err)
		}
	})
}
