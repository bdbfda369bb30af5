// Package fold turns names into search keys: lower case, accents removed,
// punctuation to spaces, so "N'DIAYE Aïssatou" and "ndiaye aissatou" meet. It
// has no dependencies on storage, so the ent schema's hooks can use it.
package fold

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

var ligatures = strings.NewReplacer("œ", "oe", "Œ", "oe", "æ", "ae", "Æ", "ae", "ß", "ss")

// Fold returns the search form of s: lower case, no diacritics, apostrophes
// removed (N'Diaye → ndiaye), any other non-alphanumeric run as one space.
func Fold(s string) string {
	s = ligatures.Replace(norm.NFD.String(s))
	var b strings.Builder
	space := true // no leading space
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case r == '\'' || r == '’' || r == 'ʼ':
			continue
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
			space = false
		default:
			if !space {
				b.WriteByte(' ')
				space = true
			}
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// Key is the stored search key of a student: "last first".
func Key(lastName, firstName string) string {
	return Fold(lastName + " " + firstName)
}
