package pdf

import (
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"unicode"

	"github.com/pdfcpu/pdfcpu/pkg/font"
	pdffont "github.com/pdfcpu/pdfcpu/pkg/pdfcpu/font"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// DejaVu Sans covers every French character (and far more); pdfcpu's 14
// core fonts only know WinAnsi and are not embedded. Licence: see
// fonts/LICENSE-DejaVu.txt.
//
//go:embed fonts/DejaVuSans.ttf
var dejaVuSans []byte

// fontName is the PostScript name pdfcpu registers the font under.
const fontName = "DejaVuSans"

// fontMu serialises use of pdfcpu's user-font directory, a process-wide
// variable.
var fontMu sync.Mutex

// withFont runs fn while pdfcpu can use DejaVu Sans. pdfcpu only loads user
// fonts from a directory (its config dir, which we disable), so the font is
// installed into a private temporary directory for the duration of fn and
// the directory is removed afterwards: no file outlives the call.
func withFont(fn func() error) (err error) {
	fontMu.Lock()
	defer fontMu.Unlock()
	dir, err := os.MkdirTemp("", "korrigo-font-")
	if err != nil {
		return fmt.Errorf("font: %w", err)
	}
	prev := font.UserFontDir
	defer func() {
		font.UserFontDir = prev
		// Forget the metrics of a directory that no longer exists.
		_ = font.ReloadUserFonts()
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("font: remove %s: %w", dir, rerr)
		}
	}()
	if err := font.InstallFontFromBytesQuiet(dir, fontName, dejaVuSans); err != nil {
		return fmt.Errorf("font: install: %w", err)
	}
	font.UserFontDir = dir
	if err := font.ReloadUserFonts(); err != nil {
		return fmt.Errorf("font: load: %w", err)
	}
	return fn()
}

// textFont draws text with the embedded font in one document. Create it
// inside withFont; call finish once all text is drawn, so that pdfcpu embeds
// the subset of glyphs actually used.
type textFont struct {
	xref *model.XRefTable
	ref  types.IndirectRef
	ttf  font.TTFLight
	used map[uint16]bool
}

func newTextFont(xref *model.XRefTable) (*textFont, error) {
	ref, err := pdffont.EnsureFontDict(xref, fontName, "", "", false, nil)
	if err != nil {
		return nil, fmt.Errorf("font: %w", err)
	}
	ttf, ok, err := font.UserFont(fontName)
	if err != nil {
		return nil, fmt.Errorf("font: metrics: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("font: %s is not installed", fontName)
	}
	used := xref.UsedGIDs[fontName]
	if used == nil {
		used = map[uint16]bool{}
		xref.UsedGIDs[fontName] = used
	}
	return &textFont{xref: xref, ref: *ref, ttf: ttf, used: used}, nil
}

func (f *textFont) finish() error {
	if err := pdffont.UpdateUserfonts(f.xref, map[string]types.IndirectRef{fontName: f.ref}); err != nil {
		return fmt.Errorf("font: embed subset: %w", err)
	}
	return nil
}

// encode returns s as a hex string operand for Tj: the font is a Type0 font
// with Identity-H encoding, so each character is its 2-byte glyph id.
// Characters the font lacks become "?" rather than vanishing.
func (f *textFont) encode(s string) string {
	var sb strings.Builder
	sb.WriteByte('<')
	for _, r := range cleanText(s) {
		gid, ok := f.ttf.Chars[uint32(r)]
		if !ok {
			gid = f.ttf.Chars['?']
		}
		f.used[gid] = true
		sb.WriteString(hex.EncodeToString([]byte{byte(gid >> 8), byte(gid)}))
	}
	sb.WriteByte('>')
	return sb.String()
}

// width is the advance width of s in points at size.
func (f *textFont) width(s string, size float64) float64 {
	var w int
	for _, r := range cleanText(s) {
		gid, ok := f.ttf.Chars[uint32(r)]
		if !ok {
			gid = f.ttf.Chars['?']
		}
		if int(gid) < len(f.ttf.GlyphWidths) {
			w += f.ttf.GlyphWidths[gid] // pdfcpu keeps them in 1/1000 em
		}
	}
	return float64(w) * size / 1000
}

// wrap breaks s into lines no wider than maxWidth at size, on spaces where
// possible and inside over-long words otherwise. Newlines in s are kept.
func (f *textFont) wrap(s string, size, maxWidth float64) []string {
	var lines []string
	for _, para := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			cand := word
			if line != "" {
				cand = line + " " + word
			}
			if f.width(cand, size) <= maxWidth {
				line = cand
				continue
			}
			if line != "" {
				lines = append(lines, line)
			}
			line = ""
			for f.width(word, size) > maxWidth {
				cut := f.fit(word, size, maxWidth)
				lines = append(lines, word[:cut])
				word = word[cut:]
			}
			line = word
		}
		lines = append(lines, line)
	}
	return lines
}

// fit returns the byte length of the longest prefix of word (at least one
// character) that fits in maxWidth.
func (f *textFont) fit(word string, size, maxWidth float64) int {
	cut := 0
	for i, r := range word {
		next := i + len(string(r))
		if cut > 0 && f.width(word[:next], size) > maxWidth {
			break
		}
		cut = next
	}
	return cut
}

// cleanText drops control characters, which have no glyph and would only
// show as boxes.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}
