package pdf

import (
	"fmt"
	"math"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// Annotation kinds, as in the GraphQL contract.
const (
	KindComment   = "COMMENT"
	KindHighlight = "HIGHLIGHT"
	KindError     = "ERROR"
	KindBonus     = "BONUS"
)

// Mark is one annotation of a corrector. X, Y, W, H are fractions of the
// page as displayed (after /Rotate), origin at its top-left corner.
type Mark struct {
	X      float64  `json:"x"`
	Y      float64  `json:"y"`
	W      float64  `json:"w"`
	H      float64  `json:"h"`
	Kind   string   `json:"kind"`
	Text   string   `json:"text,omitempty"`
	Points *float64 `json:"points,omitempty"`
}

// PageMarks are the marks of one page; PageIndex is 0-based.
type PageMarks struct {
	PageIndex int    `json:"pageIndex"`
	Marks     []Mark `json:"marks"`
}

// markStyle is how a kind looks on paper.
type markStyle struct {
	frame rgb // rectangle outline, or fill for highlights
	ink   rgb // label text
	fill  bool
}

var markStyles = map[string]markStyle{
	KindComment:   {frame: rgb{0.12, 0.35, 0.85}, ink: rgb{0.08, 0.25, 0.65}},
	KindHighlight: {frame: rgb{1, 0.87, 0}, ink: rgb{0.35, 0.28, 0}, fill: true},
	KindError:     {frame: rgb{0.85, 0.1, 0.1}, ink: rgb{0.7, 0.05, 0.05}},
	KindBonus:     {frame: rgb{0.1, 0.6, 0.2}, ink: rgb{0.05, 0.45, 0.12}},
}

// An unknown kind (a newer client) still prints, in neutral grey, rather
// than failing a finalisation.
var defaultStyle = markStyle{frame: rgb{0.4, 0.4, 0.4}, ink: rgb{0.25, 0.25, 0.25}}

const (
	labelSize    = 9.0
	labelLeading = 11.0
	labelMinW    = 150.0 // narrow marks still get a readable label
	pageMargin   = 8.0
	highlightCA  = 0.35 // highlighter: the scan stays legible under it
	labelBackCA  = 0.8  // label backing: text stays legible over handwriting
)

// Burn produces the final PDF of a copy: every page with its marks drawn
// on top, then the summary page(s). No student name is ever drawn: the
// summary only knows the anonymous id. The copy is rebuilt from page
// content first, like Sanitize, so the served file is clean even if the
// stored copy were not.
func Burn(in []byte, marks []PageMarks, summary Summary) ([]byte, error) {
	src, geoms, err := openBytes(in, 0)
	if err != nil {
		return nil, fmt.Errorf("burn: %w", err)
	}
	byPage := make([][]Mark, len(geoms))
	for _, pm := range marks {
		if pm.PageIndex < 0 || pm.PageIndex >= len(geoms) {
			return nil, fmt.Errorf("burn: marks for page index %d, copy has %d pages", pm.PageIndex, len(geoms))
		}
		byPage[pm.PageIndex] = append(byPage[pm.PageIndex], pm.Marks...)
	}
	doc, err := rebuildContext(src, wholePages(geoms))
	if err != nil {
		return nil, fmt.Errorf("burn: %w", err)
	}
	err = withFont(func() error {
		tf, err := newTextFont(doc.XRefTable)
		if err != nil {
			return err
		}
		b := &burner{doc: doc, font: tf}
		for i, ms := range byPage {
			if len(ms) == 0 {
				continue
			}
			// The rebuilt page keeps the source's user space, with the
			// visible box as MediaBox: the source geometry still applies.
			if err := b.stampPage(i+1, geoms[i], ms); err != nil {
				return fmt.Errorf("page %d: %w", i+1, err)
			}
		}
		if err := appendSummary(doc, tf, summary); err != nil {
			return fmt.Errorf("summary: %w", err)
		}
		return tf.finish()
	})
	if err != nil {
		return nil, fmt.Errorf("burn: %w", err)
	}
	out, err := writeContext(doc)
	if err != nil {
		return nil, fmt.Errorf("burn: %w", err)
	}
	return out, nil
}

type burner struct {
	doc       *model.Context
	font      *textFont
	highlight *types.IndirectRef // ExtGState objects, shared by all pages
	labelBack *types.IndirectRef
}

// stampPage draws marks over page pageNr. The page's own content is
// wrapped in q … Q so that whatever graphics state it leaves behind cannot
// shift or recolour the marks.
func (b *burner) stampPage(pageNr int, g pageGeom, marks []Mark) error {
	page, _, _, err := b.doc.PageDict(pageNr, false)
	if err != nil {
		return err
	}
	res, err := ownResources(b.doc.XRefTable, page)
	if err != nil {
		return err
	}
	if b.highlight == nil {
		if b.highlight, err = newAlphaState(b.doc.XRefTable, highlightCA); err != nil {
			return err
		}
		if b.labelBack, err = newAlphaState(b.doc.XRefTable, labelBackCA); err != nil {
			return err
		}
	}
	fontRes, err := addResource(b.doc.XRefTable, res, "Font", "KgFont", b.font.ref)
	if err != nil {
		return err
	}
	hlRes, err := addResource(b.doc.XRefTable, res, "ExtGState", "KgHighlight", *b.highlight)
	if err != nil {
		return err
	}
	backRes, err := addResource(b.doc.XRefTable, res, "ExtGState", "KgLabel", *b.labelBack)
	if err != nil {
		return err
	}

	c := &canvas{font: b.font, res: fontRes}
	c.op("Q q")
	m := g.matrix()
	// From here on, coordinates are those of the page as displayed.
	c.op("%s %s %s %s %s %s cm", num(m[0]), num(m[1]), num(m[2]), num(m[3]), num(m[4]), num(m[5]))
	w, h := g.displaySize()
	for _, mk := range marks {
		drawMark(c, mk, w, h, hlRes, backRes)
	}
	c.op("Q")
	return wrapContents(b.doc.XRefTable, page, []byte("q\n"), c.buf.Bytes())
}

// drawMark draws one mark on a displayed page of size pw × ph.
func drawMark(c *canvas, mk Mark, pw, ph float64, hlRes, backRes string) {
	st, ok := markStyles[mk.Kind]
	if !ok {
		st = defaultStyle
	}
	// The API validates rectangles; clamping only guards the drawing.
	x0, y0 := clamp01(mk.X), clamp01(mk.Y)
	x1, y1 := clamp01(mk.X+mk.W), clamp01(mk.Y+mk.H)
	rx, rw := x0*pw, (x1-x0)*pw
	ry, rh := (1-y1)*ph, (y1-y0)*ph // top-left origin → PDF's bottom-left

	c.op("q")
	if st.fill {
		c.op("/%s gs", hlRes)
		c.fillColor(st.frame)
		c.fillRect(rx, ry, rw, rh)
	} else {
		c.strokeColor(st.frame)
		c.strokeRect(rx, ry, rw, rh, 1.5)
	}
	c.op("Q")

	label := mk.Text
	if mk.Points != nil {
		label = formatSignedPoints(*mk.Points) + "  " + label
	}
	lines := c.font.wrap(label, labelSize, min(max(rw, labelMinW), pw-2*pageMargin))
	if len(lines) == 0 || (len(lines) == 1 && lines[0] == "") {
		return
	}
	var textW float64
	for _, l := range lines {
		textW = max(textW, c.font.width(l, labelSize))
	}
	blockH := float64(len(lines)) * labelLeading
	// Below the rectangle if it fits, else above, else inside its top.
	top := ry - 2
	switch {
	case top-blockH >= pageMargin:
	case ry+rh+2+blockH <= ph-pageMargin:
		top = ry + rh + 2 + blockH
	default:
		top = min(ry+rh, ph-pageMargin)
	}
	left := math.Max(pageMargin, math.Min(rx, pw-pageMargin-textW))

	c.op("q /%s gs", backRes)
	c.fillColor(rgb{1, 1, 1})
	c.fillRect(left-2, top-blockH-1, textW+4, blockH+2)
	c.op("Q")
	c.fillColor(st.ink)
	for i, l := range lines {
		c.text(left, top-float64(i+1)*labelLeading+2.5, labelSize, l)
	}
}

func clamp01(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return math.Max(0, math.Min(1, v))
}
