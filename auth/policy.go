package auth

import (
	"crypto/rand"
	_ "embed"
	"math/big"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/korrigo/korrigo/apperr"
)

// Password policy bounds. The maximum only stops absurd inputs: long passphrases
// are the strong ones.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 256
	// minDistinct rejects "aaaaaaaaaaaa" and "abababababab", which pass the length
	// rule but fall to the first guesses of any cracker.
	minDistinct = 5
	// minPersonalToken is the shortest part of a name or email that a password may
	// not contain: shorter ones ("li", "bob") occur in too many honest passwords.
	minPersonalToken = 4
)

// The common-password list: the 10,000 most common passwords (source and
// licence in the file's header) plus our own French and school words.
var (
	//go:embed common-passwords-10k.txt
	commonPasswords10k string
	//go:embed common-passwords.txt
	commonPasswordsText string
)

var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 11000)
	for line := range strings.Lines(commonPasswords10k + "\n" + commonPasswordsText) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			set[strings.ToLower(line)] = struct{}{}
		}
	}
	return set
})

// CheckPassword applies the password policy to a password about to be set for
// the account (email, name): at least 12 characters, not only digits, not a
// common password nor a decorated one ("Password2024!"), and not containing the
// name or the local part of the email. A violation is BAD_USER_INPUT naming
// "password".
func CheckPassword(password, email, name string) error {
	return checkPassword("password", password, email, name)
}

// checkPassword is CheckPassword reporting the violation on field.
func checkPassword(field, password, email, name string) error {
	password = normalize(password)
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLength:
		return apperr.BadField(field, "the password must be at least %d characters long", MinPasswordLength)
	case n > MaxPasswordLength:
		return apperr.BadField(field, "the password must be at most %d characters long", MaxPasswordLength)
	case allDigits(password):
		return apperr.BadField(field, "the password must not be only digits")
	case distinctRunes(password) < minDistinct:
		return apperr.BadField(field, "the password is too repetitive")
	case isCommon(password):
		return apperr.BadField(field, "the password is too common; a few unrelated words make a strong one")
	case containsPersonal(password, email, name):
		return apperr.BadField(field, "the password must not contain your name or your email address")
	}
	return nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

func distinctRunes(s string) int {
	seen := make(map[rune]struct{}, len(s))
	for _, r := range s {
		seen[r] = struct{}{}
	}
	return len(seen)
}

// isCommon reports whether the password, or its core once the digits and
// symbols people add around a word are removed and leetspeak undone, is listed:
// with a 12-character minimum, most listed passwords only ever appear decorated.
func isCommon(password string) bool {
	set := commonPasswords()
	lower := strings.ToLower(password)
	for _, candidate := range []string{
		lower,
		trimDecorations(lower),
		unleet(trimDecorations(lower)),
		trimDecorations(unleet(lower)),
	} {
		if _, ok := set[candidate]; ok && candidate != "" {
			return true
		}
	}
	return false
}

func trimDecorations(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return !unicode.IsLetter(r) })
}

var leet = strings.NewReplacer("@", "a", "4", "a", "0", "o", "1", "i", "3", "e", "$", "s", "5", "s", "7", "t", "!", "i")

func unleet(s string) string { return leet.Replace(s) }

// containsPersonal reports whether the password contains a part (≥ 4 letters or
// digits) of the name or of the email's local part, ignoring case.
func containsPersonal(password, email, name string) bool {
	lower := strings.ToLower(password)
	local, _, _ := strings.Cut(strings.ToLower(email), "@")
	tokens := splitWords(local)
	if utf8.RuneCountInString(local) >= minPersonalToken {
		tokens = append(tokens, local)
	}
	tokens = append(tokens, splitWords(strings.ToLower(name))...)
	for _, t := range tokens {
		if utf8.RuneCountInString(t) >= minPersonalToken && strings.Contains(lower, t) {
			return true
		}
	}
	return false
}

func splitWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// tempAlphabet leaves out characters read or typed ambiguously (0/o, 1/l/i).
const tempAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

// generatePassword returns a random password such as "k7m2p-x9c4t-…": four
// groups of five from tempAlphabet (≈ 99 bits), easy to dictate and type, and
// checked against the policy for the account it is meant for.
func generatePassword(email, name string) string {
	for {
		var b strings.Builder
		for i := range 20 {
			if i > 0 && i%5 == 0 {
				b.WriteByte('-')
			}
			n, err := rand.Int(rand.Reader, big.NewInt(int64(len(tempAlphabet))))
			if err != nil {
				panic("auth: crypto/rand: " + err.Error()) // cannot happen: crypto/rand does not fail
			}
			b.WriteByte(tempAlphabet[n.Int64()])
		}
		if p := b.String(); CheckPassword(p, email, name) == nil {
			return p
		}
	}
}
