package pdf

import (
	"bytes"
	"strconv"
)

// A small content-stream tokenizer for the mask filter: it reports where
// each operand and operator starts and ends, so the filter can copy the
// stream verbatim except for the operations it drops.

type tokKind int

const (
	tokNum tokKind = iota
	tokName
	tokString
	tokArray
	tokDict
	tokOther // true, false, null, stray delimiters
	tokOp
)

type cToken struct {
	kind       tokKind
	start, end int
	text       string  // operator or name (without the slash)
	num        float64 // tokNum
	n          int     // string bytes (strings, and strings inside arrays)
}

type cTokenizer struct {
	b   []byte
	pos int
}

func cSpace(c byte) bool {
	return c == 0 || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' '
}
func cDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

// maxNesting bounds arrays and dictionaries inside a content stream.
const maxNesting = 64

func (t *cTokenizer) next() (cToken, bool) {
	return t.nextAt(0)
}

func (t *cTokenizer) nextAt(depth int) (cToken, bool) {
	for t.pos < len(t.b) {
		c := t.b[t.pos]
		start := t.pos
		switch {
		case cSpace(c):
			t.pos++
		case c == '%':
			for t.pos < len(t.b) && t.b[t.pos] != '\n' && t.b[t.pos] != '\r' {
				t.pos++
			}
		case c == '/':
			t.pos++
			w := t.word()
			return cToken{kind: tokName, start: start, end: t.pos, text: w}, true
		case c == '(':
			n := t.literal()
			return cToken{kind: tokString, start: start, end: t.pos, n: n}, true
		case c == '<' && t.pos+1 < len(t.b) && t.b[t.pos+1] == '<':
			t.pos += 2
			n := t.until(">>", depth)
			return cToken{kind: tokDict, start: start, end: t.pos, n: n}, true
		case c == '<':
			n := t.hexString()
			return cToken{kind: tokString, start: start, end: t.pos, n: n}, true
		case c == '[':
			t.pos++
			n := t.until("]", depth)
			return cToken{kind: tokArray, start: start, end: t.pos, n: n}, true
		case c == ']' || c == '>' || c == ')' || c == '{' || c == '}':
			t.pos++
			return cToken{kind: tokOther, start: start, end: t.pos, text: string(c)}, true
		default:
			w := t.word()
			if w == "" {
				t.pos++
				continue
			}
			if f, err := strconv.ParseFloat(w, 64); err == nil {
				return cToken{kind: tokNum, start: start, end: t.pos, num: f}, true
			}
			switch w {
			case "true", "false", "null":
				return cToken{kind: tokOther, start: start, end: t.pos, text: w}, true
			}
			return cToken{kind: tokOp, start: start, end: t.pos, text: w}, true
		}
	}
	return cToken{}, false
}

// until reads tokens up to the closing delimiter and returns the bytes of
// the strings among them.
func (t *cTokenizer) until(closer string, depth int) int {
	n := 0
	if depth > maxNesting {
		t.pos = len(t.b)
		return n
	}
	for {
		if t.pos >= len(t.b) {
			return n
		}
		// skip white space to test for the closer
		for t.pos < len(t.b) && cSpace(t.b[t.pos]) {
			t.pos++
		}
		if bytes.HasPrefix(t.b[t.pos:], []byte(closer)) {
			t.pos += len(closer)
			return n
		}
		tk, ok := t.nextAt(depth + 1)
		if !ok {
			return n
		}
		n += tk.n
	}
}

func (t *cTokenizer) word() string {
	start := t.pos
	for t.pos < len(t.b) && !cSpace(t.b[t.pos]) && !cDelim(t.b[t.pos]) {
		t.pos++
	}
	return string(t.b[start:t.pos])
}

// literal skips a (string) and returns its decoded length.
func (t *cTokenizer) literal() int {
	t.pos++
	depth, n := 1, 0
	for t.pos < len(t.b) {
		c := t.b[t.pos]
		t.pos++
		switch c {
		case '\\':
			if t.pos < len(t.b) {
				e := t.b[t.pos]
				t.pos++
				if e >= '0' && e <= '7' {
					for k := 0; k < 2 && t.pos < len(t.b) && t.b[t.pos] >= '0' && t.b[t.pos] <= '7'; k++ {
						t.pos++
					}
				}
				if e == '\n' || e == '\r' {
					continue
				}
			}
			n++
		case '(':
			depth++
			n++
		case ')':
			depth--
			if depth == 0 {
				return n
			}
			n++
		default:
			n++
		}
	}
	return n
}

// hexString skips a <hex string> and returns its decoded length.
func (t *cTokenizer) hexString() int {
	t.pos++
	digits := 0
	for t.pos < len(t.b) && t.b[t.pos] != '>' {
		if !cSpace(t.b[t.pos]) {
			digits++
		}
		t.pos++
	}
	if t.pos < len(t.b) {
		t.pos++
	}
	return (digits + 1) / 2
}

// skipInlineImage moves past an inline image (after its BI operator) and
// returns the end of its EI operator. The image data is binary: EI counts
// only when white space surrounds it.
func (t *cTokenizer) skipInlineImage() int {
	id := bytes.Index(t.b[t.pos:], []byte("ID"))
	if id < 0 {
		t.pos = len(t.b)
		return t.pos
	}
	p := t.pos + id + 2
	for {
		i := bytes.Index(t.b[p:], []byte("EI"))
		if i < 0 {
			t.pos = len(t.b)
			return t.pos
		}
		at := p + i
		before := at > 0 && cSpace(t.b[at-1])
		after := at+2 >= len(t.b) || cSpace(t.b[at+2]) || cDelim(t.b[at+2])
		if before && after {
			t.pos = at + 2
			return t.pos
		}
		p = at + 2
	}
}
