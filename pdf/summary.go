package pdf

import (
	"math"
	"strconv"
	"strings"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// Summary is what the last page of a graded copy states. It deliberately
// has no field for the student's name: copies stay anonymous on paper.
type Summary struct {
	AnonymousID  string         `json:"anonymousId"`
	Grade20      float64        `json:"grade20"`
	Total        float64        `json:"total"`
	Max          float64        `json:"max"`
	Questions    []QuestionLine `json:"questions"`
	Appreciation string         `json:"appreciation,omitempty"`
}

// QuestionLine is one question of the marking scheme with its score.
type QuestionLine struct {
	Label  string  `json:"label"`
	Points float64 `json:"points"`
	Max    float64 `json:"max"`
	Remark string  `json:"remark,omitempty"`
}

// Summary page layout, in points on an A4 page.
const (
	sumMargin   = 56.0 // 2 cm
	sumLabelW   = 110.0
	sumPointsW  = 80.0
	sumGutter   = 12.0
	sumBodySize = 10.0
	sumLeading  = 13.0
)

var (
	inkBlack = rgb{0, 0, 0}
	inkGrey  = rgb{0.45, 0.45, 0.45}
	ruleGrey = rgb{0.8, 0.8, 0.8}
)

// appendSummary adds the summary page to doc, and continuation pages when
// the per-question remarks do not fit on one.
func appendSummary(doc *model.Context, tf *textFont, s Summary) error {
	l := &summaryLayout{font: tf}
	l.newPage()
	l.write(0, 16, inkBlack, "Relevé de notes")
	l.gap(4)
	l.write(0, 11, inkGrey, "Copie anonyme : "+s.AnonymousID)
	l.gap(10)
	l.write(0, 22, inkBlack, "Note : "+formatGrade(s.Grade20)+" / 20")
	l.gap(2)
	l.write(0, 11, inkBlack, "Total des points : "+formatNumber(s.Total)+" / "+formatNumber(s.Max))
	l.gap(14)

	if len(s.Questions) > 0 {
		l.write(0, 13, inkBlack, "Détail par question")
		l.gap(4)
		l.questionHeader()
		for _, q := range s.Questions {
			l.questionRow(q)
		}
		l.gap(14)
	}
	if strings.TrimSpace(s.Appreciation) != "" {
		l.write(0, 13, inkBlack, "Appréciation")
		l.gap(4)
		for _, line := range tf.wrap(s.Appreciation, sumBodySize+0.5, l.width()) {
			l.write(0, sumBodySize+0.5, inkBlack, line)
		}
	}

	pagesRef, pagesDict, err := pageTree(doc)
	if err != nil {
		return err
	}
	for _, c := range l.pages {
		content, err := newContentStream(doc.XRefTable, c.buf.Bytes())
		if err != nil {
			return err
		}
		page := types.Dict{
			"Type":      types.Name("Page"),
			"MediaBox":  types.RectForFormat("A4").Array(),
			"Resources": types.Dict{"Font": types.Dict{c.res: tf.ref}},
			"Contents":  *content,
		}
		if err := appendPage(doc, pagesRef, pagesDict, page); err != nil {
			return err
		}
	}
	return nil
}

// summaryLayout flows text down A4 pages.
type summaryLayout struct {
	font  *textFont
	pages []*canvas
	cur   *canvas
	y     float64 // top of the next line
}

func (l *summaryLayout) width() float64 { return types.PaperSize["A4"].Width - 2*sumMargin }

func (l *summaryLayout) newPage() {
	l.cur = &canvas{font: l.font, res: "KgFont"}
	l.pages = append(l.pages, l.cur)
	l.y = types.PaperSize["A4"].Height - sumMargin
}

// room starts a continuation page unless h points are left on this one.
func (l *summaryLayout) room(h float64) {
	if l.y-h < sumMargin {
		l.continuation()
	}
}

func (l *summaryLayout) continuation() {
	l.newPage()
	l.write(0, 9, inkGrey, "Relevé de notes (suite)")
	l.gap(8)
}

func (l *summaryLayout) gap(h float64) { l.y -= h }

// write draws one line at horizontal offset dx from the margin.
func (l *summaryLayout) write(dx, size float64, ink rgb, s string) {
	lead := size * 1.3
	l.room(lead)
	l.cur.fillColor(ink)
	l.cur.text(sumMargin+dx, l.y-size, size, s)
	l.y -= lead
}

func (l *summaryLayout) questionHeader() {
	l.room(sumLeading + 4)
	base := l.y - 9
	l.cur.fillColor(inkGrey)
	l.cur.text(sumMargin, base, 9, "Question")
	l.cur.textRight(sumMargin+sumLabelW+sumPointsW, base, 9, "Points")
	l.cur.text(sumMargin+sumLabelW+sumPointsW+sumGutter, base, 9, "Remarque")
	l.y -= sumLeading
	l.rule()
}

func (l *summaryLayout) questionRow(q QuestionLine) {
	remarkX := sumLabelW + sumPointsW + sumGutter
	labels := l.font.wrap(q.Label, sumBodySize, sumLabelW-sumGutter)
	remarks := l.font.wrap(q.Remark, sumBodySize, l.width()-remarkX)
	rows := max(len(labels), len(remarks))
	// Keep a row on one page, unless it alone is taller than a page.
	h := float64(rows)*sumLeading + 4
	if l.y-h < sumMargin && h < types.PaperSize["A4"].Height-3*sumMargin {
		l.continuation()
		l.questionHeader()
	}
	for i := range rows {
		if l.y-sumLeading < sumMargin {
			l.continuation()
			l.questionHeader()
		}
		base := l.y - sumBodySize - 2
		l.cur.fillColor(inkBlack)
		if i == 0 {
			l.cur.textRight(sumMargin+sumLabelW+sumPointsW, base, sumBodySize,
				formatNumber(q.Points)+" / "+formatNumber(q.Max))
		}
		if i < len(labels) {
			l.cur.text(sumMargin, base, sumBodySize, labels[i])
		}
		if i < len(remarks) {
			l.cur.text(sumMargin+remarkX, base, sumBodySize, remarks[i])
		}
		l.y -= sumLeading
	}
	l.y -= 2
	l.rule()
}

func (l *summaryLayout) rule() {
	l.cur.strokeColor(ruleGrey)
	l.cur.line(sumMargin, l.y, sumMargin+l.width(), l.y, 0.5)
	l.y -= 2
}

// round2 rounds half away from zero at the hundredth, as a teacher would
// (14.125 → 14.13), which strconv's round-half-even would not.
func round2(v float64) float64 {
	r := math.Round(v*100) / 100
	if r == 0 {
		return 0 // no "-0"
	}
	return r
}

// formatGrade writes a grade French-style with two decimals: "14,50".
func formatGrade(v float64) string {
	return strings.Replace(strconv.FormatFloat(round2(v), 'f', 2, 64), ".", ",", 1)
}

// formatNumber writes points French-style without useless decimals:
// "29", "29,5", "0,25".
func formatNumber(v float64) string {
	return strings.Replace(strconv.FormatFloat(round2(v), 'f', -1, 64), ".", ",", 1)
}

// formatSignedPoints writes a mark's points with an explicit sign: "+1",
// "-0,5".
func formatSignedPoints(v float64) string {
	s := formatNumber(v)
	if round2(v) > 0 {
		return "+" + s
	}
	return s
}
