package auth

import (
	"strings"
	"testing"

	"github.com/korrigo/korrigo/apperr"
)

func TestPasswordPolicy(t *testing.T) {
	const email, name = "jean-pierre.dupont@lycee-exemple.fr", "Jean-Pierre Dupont"
	for _, c := range []struct {
		password string
		ok       bool
		why      string
	}{
		{"short", false, "at least 12"},
		{"elevenchars", false, "at least 12"},
		{"123456789012345", false, "only digits"},
		{"aaaaaaaaaaaaaa", false, "repetitive"},
		{"abababababab", false, "repetitive"},
		{"qwertyuiopasdfgh", false, "too common"},
		{"correcthorsebatterystaple", false, "too common"},
		{"Password2024!", false, "too common"},
		{"P@ssw0rd12345", false, "too common"},
		{"!!azertyuiop!!", false, "too common"},
		{"Motdepasse123", false, "too common"},
		{"i am dupont and proud", false, "name or your email"},
		{"JEAN-PIERRE rocks 2026", false, "name or your email"},
		{"xx jean-pierre.dupont xx", false, "name or your email"},
		{strings.Repeat("long passphrase ", 20), false, "at most 256"},
		{"jean est là, tranquille", false, "name or your email"}, // name parts from 4 characters count
		{"pierre qui roule", false, "name or your email"},
		{"un dup ou rien du tout", true, ""}, // shorter parts do not
		{"radium polonium sorbonne", true, ""},
		{"k7m2p-x9c4t-h3f8q-w5n6r", true, ""},
		{"tout le monde aime les crêpes", true, ""},
	} {
		err := CheckPassword(c.password, email, name)
		if c.ok {
			if err != nil {
				t.Errorf("%q refused: %v", c.password, err)
			}
			continue
		}
		e := wantCode(t, err, apperr.BadUserInput, "password")
		if !strings.Contains(e.Message, c.why) {
			t.Errorf("%q: message %q, want it to mention %q", c.password, e.Message, c.why)
		}
	}
	// Entries only the 10,000 list has, decorated up to the minimum length.
	for _, p := range []string{"unbelievable", "Scandinavian!", "godzilla2024!", "Mountain-1234", "nicholas12345", "Sc0rpion12345"} {
		if err := CheckPassword(p, "x@school.example", "X"); err == nil || !strings.Contains(err.Error(), "common") {
			t.Errorf("%q: %v, want too common", p, err)
		}
	}
	if n := len(commonPasswords()); n < 10000 {
		t.Fatalf("common password list has %d entries", n)
	}
	if err := checkPassword("newPassword", "x", "", ""); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatal("checkPassword must report BAD_USER_INPUT")
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		p := generatePassword("ab@x.fr", "Ab")
		if !tempPasswordRE.MatchString(p) || seen[p] {
			t.Fatalf("generated %q (seen before: %v)", p, seen[p])
		}
		seen[p] = true
	}
}
