// Package pdftest is a small PDF content-stream interpreter for tests: it finds
// where text and rectangles land in user space, so tests assert what a reader
// would see (page order of a split, marks of a burn-in) without a rasteriser or
// pdftotext. Used by the pdf package's tests and by the jobs' API tests.
package pdftest

import (
	"bytes"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// Page is what a test sees of one page.
type Page struct {
	Media  types.Rectangle
	Rotate int
	Texts  []TextRun
	Rects  []RectPaint
	Fonts  map[string]types.Dict // resource name → font dict
	Images []ImagePaint          // XObjects drawn with Do
}

// ImagePaint is an XObject drawn on the page.
type ImagePaint struct {
	Name string     // resource name
	CTM  [6]float64 // maps the unit square to user space
}

// TextRun is a shown string.
type TextRun struct {
	X, Y float64 // text origin in user space
	Font string  // resource name
	Text string  // decoded
}

// RectPaint is a painted rectangle.
type RectPaint struct {
	R      types.Rectangle // user space
	Op     string          // painting operator: f, S, B…
	Fill   []float64
	Stroke []float64
	GS     string // last ExtGState set with gs
}

// Scan interprets every page of pdf.
func Scan(t testing.TB, pdf []byte) []Page {
	t.Helper()
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	ctx, err := api.ReadContext(bytes.NewReader(pdf), conf)
	if err != nil {
		t.Fatalf("read output: %v", err)
	}
	if err := api.ValidateContext(ctx); err != nil {
		t.Fatalf("output does not validate: %v", err)
	}
	pages := make([]Page, ctx.PageCount)
	for i := range pages {
		d, _, inh, err := ctx.PageDict(i+1, false)
		if err != nil {
			t.Fatalf("page %d: %v", i+1, err)
		}
		p := Page{Media: normRect(inh.MediaBox), Rotate: normRotate(inh.Rotate), Fonts: map[string]types.Dict{}}
		cmaps := map[string]map[string]string{}
		if fd := inh.Resources.DictEntry("Font"); fd != nil {
			for name, ref := range fd {
				f, err := ctx.DereferenceDict(ref)
				if err != nil {
					t.Fatalf("page %d font %s: %v", i+1, name, err)
				}
				p.Fonts[name] = f
				if tu, ok := f.Find("ToUnicode"); ok {
					sd, _, err := ctx.DereferenceStreamDict(tu)
					if err != nil || sd == nil {
						t.Fatalf("page %d font %s ToUnicode: %v", i+1, name, err)
					}
					if err := sd.Decode(); err != nil {
						t.Fatalf("decode ToUnicode: %v", err)
					}
					cmaps[name] = parseToUnicode(string(sd.Content))
				}
			}
		}
		content, err := ctx.PageContent(d, i+1)
		if err != nil && err != model.ErrNoContent {
			t.Fatalf("page %d content: %v", i+1, err)
		}
		interpret(&p, content, cmaps)
		pages[i] = p
	}
	return pages
}

// textIn returns the text whose origin lies inside r, in content order,
// runs joined by single spaces.
// TextIn is the text whose origin lies in r.
func (p Page) TextIn(r types.Rectangle) string {
	var parts []string
	for _, tr := range p.Texts {
		if tr.X >= r.LL.X && tr.X <= r.UR.X && tr.Y >= r.LL.Y && tr.Y <= r.UR.Y {
			parts = append(parts, tr.Text)
		}
	}
	return strings.Join(parts, " ")
}

// visibleText is the text a reader sees: drawn inside the MediaBox.
// VisibleText is the text drawn inside the MediaBox.
func (p Page) VisibleText() string { return p.TextIn(p.Media) }

var (
	bfcharRe  = regexp.MustCompile(`<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>`)
	bfrangeRe = regexp.MustCompile(`<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>`)
)

// parseToUnicode reads bfchar and bfrange entries of a ToUnicode CMap into
// code (as raw bytes) → text.
func parseToUnicode(cmap string) map[string]string {
	m := map[string]string{}
	for _, block := range strings.Split(cmap, "beginbfrange")[1:] {
		block = strings.Split(block, "endbfrange")[0]
		for _, g := range bfrangeRe.FindAllStringSubmatch(block, -1) {
			lo, _ := strconv.ParseUint(g[1], 16, 32)
			hi, _ := strconv.ParseUint(g[2], 16, 32)
			dst, _ := strconv.ParseUint(g[3], 16, 32)
			for c := lo; c <= hi; c++ {
				m[codeBytes(c, len(g[1])/2)] = string(rune(dst + c - lo))
			}
		}
	}
	for _, block := range strings.Split(cmap, "beginbfchar")[1:] {
		block = strings.Split(block, "endbfchar")[0]
		for _, g := range bfcharRe.FindAllStringSubmatch(block, -1) {
			src, _ := hex.DecodeString(g[1])
			dst, _ := hex.DecodeString(g[2])
			u := make([]uint16, len(dst)/2)
			for i := range u {
				u[i] = uint16(dst[2*i])<<8 | uint16(dst[2*i+1])
			}
			m[string(src)] = string(utf16.Decode(u))
		}
	}
	return m
}

func codeBytes(c uint64, n int) string {
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = byte(c)
		c >>= 8
	}
	return string(b)
}

func decodeText(raw []byte, cmap map[string]string) string {
	if cmap == nil {
		// Simple fonts in these tests use WinAnsi; Latin-1 matches it for
		// every character the tests draw.
		r := make([]rune, len(raw))
		for i, b := range raw {
			r[i] = rune(b)
		}
		return string(r)
	}
	var sb strings.Builder
	for i := 0; i+1 < len(raw); i += 2 {
		if s, ok := cmap[string(raw[i:i+2])]; ok {
			sb.WriteString(s)
		} else {
			sb.WriteRune('\uFFFD')
		}
	}
	return sb.String()
}

type matrix [6]float64

var identity = matrix{1, 0, 0, 1, 0, 0}

// mul returns a·b: apply a first, then b (PDF row-vector convention).
func (a matrix) mul(b matrix) matrix {
	return matrix{
		a[0]*b[0] + a[1]*b[2], a[0]*b[1] + a[1]*b[3],
		a[2]*b[0] + a[3]*b[2], a[2]*b[1] + a[3]*b[3],
		a[4]*b[0] + a[5]*b[2] + b[4], a[4]*b[1] + a[5]*b[3] + b[5],
	}
}

func (a matrix) apply(x, y float64) (float64, float64) {
	return a[0]*x + a[2]*y + a[4], a[1]*x + a[3]*y + a[5]
}

type gstate struct {
	ctm          matrix
	fill, stroke []float64
	gs           string
}

func interpret(p *Page, content []byte, cmaps map[string]map[string]string) {
	gs := gstate{ctm: identity}
	var stack []gstate
	var tm, tlm matrix
	var font string
	var leading float64
	var operands []any
	var pending []types.Rectangle
	nums := func(n int) []float64 {
		if len(operands) < n {
			return make([]float64, n)
		}
		out := make([]float64, n)
		for i, o := range operands[len(operands)-n:] {
			out[i], _ = o.(float64)
		}
		return out
	}
	show := func(raw []byte) {
		x, y := tm.mul(gs.ctm).apply(0, 0)
		p.Texts = append(p.Texts, TextRun{X: x, Y: y, Font: font, Text: decodeText(raw, cmaps[font])})
	}
	nextLine := func(tx, ty float64) {
		tlm = matrix{1, 0, 0, 1, tx, ty}.mul(tlm)
		tm = tlm
	}
	tok := &tokenizer{b: content}
	for {
		v, isOp, ok := tok.next()
		if !ok {
			return
		}
		if !isOp {
			operands = append(operands, v)
			continue
		}
		switch op := v.(string); op {
		case "q":
			stack = append(stack, gs)
		case "Q":
			if len(stack) > 0 {
				gs, stack = stack[len(stack)-1], stack[:len(stack)-1]
			}
		case "cm":
			n := nums(6)
			gs.ctm = matrix(n).mul(gs.ctm)
		case "gs":
			if len(operands) > 0 {
				gs.gs, _ = operands[len(operands)-1].(string)
			}
		case "rg", "g", "k":
			gs.fill = nums(len(operands))
		case "RG", "G", "K":
			gs.stroke = nums(len(operands))
		case "BT":
			tm, tlm = identity, identity
		case "Tf":
			if len(operands) >= 2 {
				font, _ = operands[len(operands)-2].(string)
			}
		case "TL":
			leading = nums(1)[0]
		case "Tm":
			tlm = matrix(nums(6))
			tm = tlm
		case "Td":
			n := nums(2)
			nextLine(n[0], n[1])
		case "TD":
			n := nums(2)
			leading = -n[1]
			nextLine(n[0], n[1])
		case "T*":
			nextLine(0, -leading)
		case "Tj", "'", "\"":
			if op != "Tj" {
				nextLine(0, -leading)
			}
			if len(operands) > 0 {
				if s, ok := operands[len(operands)-1].([]byte); ok {
					show(s)
				}
			}
		case "TJ":
			if len(operands) > 0 {
				if arr, ok := operands[len(operands)-1].([]any); ok {
					var raw []byte
					for _, e := range arr {
						if s, ok := e.([]byte); ok {
							raw = append(raw, s...)
						}
					}
					show(raw)
				}
			}
		case "re":
			n := nums(4)
			x0, y0 := gs.ctm.apply(n[0], n[1])
			x1, y1 := gs.ctm.apply(n[0]+n[2], n[1]+n[3])
			pending = append(pending, normRect(types.NewRectangle(x0, y0, x1, y1)))
		case "f", "F", "f*", "S", "s", "B", "B*", "b", "b*", "n":
			if op != "n" {
				for _, r := range pending {
					p.Rects = append(p.Rects, RectPaint{R: r, Op: op, Fill: gs.fill, Stroke: gs.stroke, GS: gs.gs})
				}
			}
			pending = nil
		case "Do":
			if len(operands) > 0 {
				if name, ok := operands[len(operands)-1].(string); ok {
					p.Images = append(p.Images, ImagePaint{Name: name, CTM: gs.ctm})
				}
			}
		case "BI":
			tok.skipInlineImage()
		}
		operands = operands[:0]
	}
}

// tokenizer splits a content stream into operands (float64, string for
// names, []byte for strings, []any for arrays) and operators.
type tokenizer struct {
	b   []byte
	pos int
}

func isSpace(c byte) bool { return strings.IndexByte("\x00\t\n\f\r ", c) >= 0 }
func isDelim(c byte) bool { return strings.IndexByte("()<>[]{}/%", c) >= 0 }

func (t *tokenizer) next() (v any, isOp, ok bool) {
	for t.pos < len(t.b) {
		c := t.b[t.pos]
		switch {
		case isSpace(c):
			t.pos++
		case c == '%':
			for t.pos < len(t.b) && t.b[t.pos] != '\n' && t.b[t.pos] != '\r' {
				t.pos++
			}
		case c == '/':
			t.pos++
			return t.word(), false, true
		case c == '(':
			return t.literal(), false, true
		case c == '<' && t.pos+1 < len(t.b) && t.b[t.pos+1] == '<':
			t.pos += 2
			return "<<", false, true
		case c == '>' && t.pos+1 < len(t.b) && t.b[t.pos+1] == '>':
			t.pos += 2
			return ">>", false, true
		case c == '<':
			return t.hexString(), false, true
		case c == '[':
			t.pos++
			var arr []any
			for {
				v, isOp, ok := t.next()
				if !ok || (!isOp && v == "]") {
					return arr, false, true
				}
				arr = append(arr, v)
			}
		case c == ']':
			t.pos++
			return "]", false, true
		default:
			w := t.word()
			if f, err := strconv.ParseFloat(w, 64); err == nil {
				return f, false, true
			}
			if w == "" { // stray delimiter
				t.pos++
				continue
			}
			return w, true, true
		}
	}
	return nil, false, false
}

func (t *tokenizer) word() string {
	start := t.pos
	for t.pos < len(t.b) && !isSpace(t.b[t.pos]) && !isDelim(t.b[t.pos]) {
		t.pos++
	}
	return string(t.b[start:t.pos])
}

func (t *tokenizer) literal() []byte {
	t.pos++ // (
	var out []byte
	depth := 1
	for t.pos < len(t.b) {
		c := t.b[t.pos]
		t.pos++
		switch c {
		case '\\':
			if t.pos >= len(t.b) {
				return out
			}
			e := t.b[t.pos]
			t.pos++
			switch e {
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case '\n', '\r':
			default:
				if e >= '0' && e <= '7' {
					n := int(e - '0')
					for k := 0; k < 2 && t.pos < len(t.b) && t.b[t.pos] >= '0' && t.b[t.pos] <= '7'; k++ {
						n = n*8 + int(t.b[t.pos]-'0')
						t.pos++
					}
					out = append(out, byte(n))
				} else {
					out = append(out, e)
				}
			}
		case '(':
			depth++
			out = append(out, c)
		case ')':
			depth--
			if depth == 0 {
				return out
			}
			out = append(out, c)
		default:
			out = append(out, c)
		}
	}
	return out
}

func (t *tokenizer) hexString() []byte {
	t.pos++ // <
	end := bytes.IndexByte(t.b[t.pos:], '>')
	if end < 0 {
		end = len(t.b) - t.pos
	}
	var digits []byte
	for _, c := range t.b[t.pos : t.pos+end] {
		if !isSpace(c) {
			digits = append(digits, c)
		}
	}
	t.pos += end + 1
	if len(digits)%2 == 1 {
		digits = append(digits, '0')
	}
	out, _ := hex.DecodeString(string(digits))
	return out
}

func (t *tokenizer) skipInlineImage() {
	i := bytes.Index(t.b[t.pos:], []byte("EI"))
	if i < 0 {
		t.pos = len(t.b)
		return
	}
	t.pos += i + 2
}

func normRect(r *types.Rectangle) types.Rectangle {
	if r == nil {
		return types.Rectangle{}
	}
	return *types.NewRectangle(min(r.LL.X, r.UR.X), min(r.LL.Y, r.UR.Y), max(r.LL.X, r.UR.X), max(r.LL.Y, r.UR.Y))
}

func normRotate(r int) int { return ((r % 360) + 360) % 360 }

// VisibleTexts returns, per page, the text drawn inside the page's MediaBox.
func VisibleTexts(t testing.TB, pdf []byte) []string {
	t.Helper()
	pages := Scan(t, pdf)
	out := make([]string, len(pages))
	for i, p := range pages {
		out[i] = p.VisibleText()
	}
	return out
}

// MediaSizes returns each page's MediaBox width and height.
func MediaSizes(t testing.TB, pdf []byte) [][2]float64 {
	t.Helper()
	pages := Scan(t, pdf)
	out := make([][2]float64, len(pages))
	for i, p := range pages {
		out[i] = [2]float64{p.Media.Width(), p.Media.Height()}
	}
	return out
}

// EmbeddedFonts reports, for the fonts used on page i (0-based), whether each
// has an embedded font program (FontFile, FontFile2 or FontFile3, directly or
// through a descendant font).
func EmbeddedFonts(t testing.TB, pdf []byte, i int) map[string]bool {
	t.Helper()
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	ctx, err := api.ReadContext(bytes.NewReader(pdf), conf)
	if err != nil {
		t.Fatal(err)
	}
	pages := Scan(t, pdf)
	out := map[string]bool{}
	for name, f := range pages[i].Fonts {
		out[name] = fontEmbedded(ctx, f)
	}
	return out
}

func fontEmbedded(ctx *model.Context, f types.Dict) bool {
	if fd, err := ctx.DereferenceDict(f["FontDescriptor"]); err == nil && fd != nil {
		for _, k := range []string{"FontFile", "FontFile2", "FontFile3"} {
			if _, ok := fd.Find(k); ok {
				return true
			}
		}
	}
	if arr, err := ctx.DereferenceArray(f["DescendantFonts"]); err == nil {
		for _, o := range arr {
			if d, err := ctx.DereferenceDict(o); err == nil && d != nil && fontEmbedded(ctx, d) {
				return true
			}
		}
	}
	return false
}
