package pdf

import (
	"github.com/korrigo/korrigo/pdf/pdftest"

	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

func pts(v float64) *float64 { return &v }

func sampleSummary() Summary {
	return Summary{
		AnonymousID: "1a2b-007",
		Grade20:     14.5,
		Total:       29,
		Max:         40,
		Questions: []QuestionLine{
			{Label: "1.a", Points: 3.5, Max: 4, Remark: "Très bien, démonstration complète."},
			{Label: "1.b", Points: 0.25, Max: 2, Remark: ""},
			{Label: "Exercice 2", Points: 25.25, Max: 34, Remark: "Erreur de signe à la fin ; le raisonnement reste juste."},
		},
		Appreciation: "Très bon travail, à approfondir sur la rédaction. Élève sérieux.",
	}
}

func TestBurnPagesSummaryAndFont(t *testing.T) {
	in := readTestdata(t, "copy-a4-4p.pdf")
	marks := []PageMarks{
		{PageIndex: 0, Marks: []Mark{{X: 0.1, Y: 0.1, W: 0.3, H: 0.1, Kind: KindBonus, Text: "Bonne idée", Points: pts(1)}}},
		{PageIndex: 2, Marks: []Mark{{X: 0.5, Y: 0.8, W: 0.4, H: 0.1, Kind: KindError, Text: "Signe", Points: pts(-0.5)}}},
	}
	out, err := Burn(in, marks, sampleSummary())
	if err != nil {
		t.Fatal(err)
	}
	info, err := validateBytes(out, 0)
	if err != nil {
		t.Fatalf("output does not validate: %v", err)
	}
	if info.PageCount != 5 {
		t.Fatalf("output has %d pages, want 4 + 1 summary", info.PageCount)
	}
	pages := pdftest.Scan(t, out)
	for i := range 4 {
		if got, want := pages[i].VisibleText(), fmt.Sprintf("KGT s=01 p=%d", i+1); !strings.HasPrefix(got, want) {
			t.Errorf("page %d: scan text layer lost: %q", i+1, got)
		}
	}
	if got := pages[0].VisibleText(); !strings.Contains(got, "+1 Bonne idée") {
		t.Errorf("page 1 label missing: %q", got)
	}
	if got := pages[2].VisibleText(); !strings.Contains(got, "-0,5 Signe") {
		t.Errorf("page 3 label missing: %q", got)
	}
	summary := pages[4].VisibleText()
	for _, want := range []string{
		"Relevé de notes", "Copie anonyme : 1a2b-007", "Note : 14,50 / 20", "Total des points : 29 / 40",
		"Détail par question", "1.a", "3,5 / 4", "Très bien, démonstration complète.", "0,25 / 2",
		"Exercice 2", "25,25 / 34", "Appréciation", "Très bon travail, à approfondir", "Élève sérieux.",
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary page lacks %q; it reads %q", want, summary)
		}
	}
	assertDejaVuEmbedded(t, out, pages[4])
}

// assertDejaVuEmbedded checks that the summary's font is a subset of DejaVu
// Sans embedded in the file, not a reference to a font the reader may lack.
func assertDejaVuEmbedded(t *testing.T, pdf []byte, p pdftest.Page) {
	t.Helper()
	ctx, err := api.ReadContext(strings.NewReader(string(pdf)), newConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Fonts) != 1 {
		t.Fatalf("summary page uses %d fonts, want 1", len(p.Fonts))
	}
	for name, f := range p.Fonts {
		if st := f.NameEntry("Subtype"); st == nil || *st != "Type0" {
			t.Fatalf("font %s subtype %v, want Type0", name, st)
		}
		if bf := f.NameEntry("BaseFont"); bf == nil || !strings.HasSuffix(*bf, "+DejaVuSans") {
			t.Fatalf("font %s BaseFont %v, want a DejaVuSans subset", name, bf)
		}
		desc, err := ctx.DereferenceArray(f["DescendantFonts"])
		if err != nil || len(desc) != 1 {
			t.Fatalf("DescendantFonts: %v %v", desc, err)
		}
		cid, err := ctx.DereferenceDict(desc[0])
		if err != nil {
			t.Fatal(err)
		}
		fd, err := ctx.DereferenceDict(cid["FontDescriptor"])
		if err != nil {
			t.Fatal(err)
		}
		sd, _, err := ctx.DereferenceStreamDict(fd["FontFile2"])
		if err != nil || sd == nil {
			t.Fatalf("no embedded FontFile2: %v", err)
		}
		if err := sd.Decode(); err != nil || len(sd.Content) < 1000 {
			t.Fatalf("embedded font program: %d bytes, err %v", len(sd.Content), err)
		}
	}
}

func TestBurnMarkLandsTopLeftQuarter(t *testing.T) {
	cases := []struct {
		name string
		page testPage
		want types.Rectangle // user space
	}{
		{"upright", testPage{w: 595, h: 842}, *types.NewRectangle(0, 421, 297.5, 842)},
		{"offset MediaBox", testPage{x0: 30, y0: 40, w: 595, h: 842}, *types.NewRectangle(30, 461, 327.5, 882)},
		// Shown turned clockwise: the displayed top-left corner is the
		// user-space origin, and the displayed page is 842 wide.
		{"rotate 90", testPage{w: 595, h: 842, rotate: 90}, *types.NewRectangle(0, 0, 297.5, 421)},
		{"rotate 180", testPage{w: 595, h: 842, rotate: 180}, *types.NewRectangle(297.5, 0, 595, 421)},
		{"rotate 270", testPage{w: 595, h: 842, rotate: 270}, *types.NewRectangle(297.5, 421, 595, 842)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := buildPDF(t, []testPage{c.page})
			marks := []PageMarks{{PageIndex: 0, Marks: []Mark{{X: 0, Y: 0, W: 0.5, H: 0.5, Kind: KindComment}}}}
			out, err := Burn(in, marks, sampleSummary())
			if err != nil {
				t.Fatal(err)
			}
			p := pdftest.Scan(t, out)[0]
			r, ok := findRect(p, "S", markStyles[KindComment].frame)
			if !ok {
				t.Fatalf("no blue stroked rectangle on page 1: %+v", p.Rects)
			}
			if !nearRect(r.R, c.want) {
				t.Fatalf("mark at %v, want %v", r.R, c.want)
			}
		})
	}
}

func TestBurnKindsColoursAndHighlightTranslucency(t *testing.T) {
	in := buildPDF(t, []testPage{{w: 595, h: 842}})
	var ms []Mark
	for i, k := range []string{KindComment, KindHighlight, KindError, KindBonus} {
		ms = append(ms, Mark{X: 0.1, Y: 0.1 + 0.2*float64(i), W: 0.3, H: 0.05, Kind: k})
	}
	out, err := Burn(in, []PageMarks{{PageIndex: 0, Marks: ms}}, sampleSummary())
	if err != nil {
		t.Fatal(err)
	}
	p := pdftest.Scan(t, out)[0]
	for _, k := range []string{KindComment, KindError, KindBonus} {
		if _, ok := findRect(p, "S", markStyles[k].frame); !ok {
			t.Errorf("%s: no stroked rectangle in its colour", k)
		}
	}
	hl, ok := findRect(p, "f", markStyles[KindHighlight].frame)
	if !ok {
		t.Fatal("HIGHLIGHT: no filled yellow rectangle")
	}
	if !strings.HasPrefix(hl.GS, "KgHighlight") {
		t.Fatalf("HIGHLIGHT drawn without the translucent graphics state (gs %q)", hl.GS)
	}
}

func TestBurnSummaryOverflowsOntoMorePages(t *testing.T) {
	s := sampleSummary()
	s.Questions = nil
	for i := range 40 {
		s.Questions = append(s.Questions, QuestionLine{
			Label: fmt.Sprintf("Question %d", i+1), Points: 1, Max: 2,
			Remark: strings.Repeat("Raisonnement à détailler davantage. ", 4),
		})
	}
	out, err := Burn(readTestdata(t, "copy-a4-4p.pdf"), nil, s)
	if err != nil {
		t.Fatal(err)
	}
	pages := pdftest.Scan(t, out)
	if len(pages) < 6 {
		t.Fatalf("%d pages: 40 long remarks should need a second summary page", len(pages))
	}
	var all strings.Builder
	for _, p := range pages[4:] {
		for _, tr := range p.Texts {
			if tr.Y < 50 || tr.Y > 842-50 {
				t.Errorf("text %q at y=%g outside the margins", tr.Text, tr.Y)
			}
		}
		all.WriteString(p.VisibleText() + " ")
	}
	for i := range 40 {
		if !strings.Contains(all.String(), fmt.Sprintf("Question %d ", i+1)) {
			t.Errorf("Question %d missing from the summary", i+1)
		}
	}
}

func TestBurnRejectsMarksOutsideTheCopy(t *testing.T) {
	_, err := Burn(readTestdata(t, "copy-a4-4p.pdf"), []PageMarks{{PageIndex: 4}}, sampleSummary())
	if err == nil {
		t.Fatal("marks for page index 4 of a 4-page copy accepted")
	}
}

func TestBurnSanitizesItsInput(t *testing.T) {
	out, err := Burn(hostilePDF(t), nil, sampleSummary())
	if err != nil {
		t.Fatal(err)
	}
	assertClean(t, out)
}

func TestBurnLeavesNoFontFiles(t *testing.T) {
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "korrigo-font-*"))
	if _, err := Burn(readTestdata(t, "copy-a4-4p.pdf"), nil, sampleSummary()); err != nil {
		t.Fatal(err)
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "korrigo-font-*"))
	if len(after) > len(before) {
		t.Fatalf("font directories left behind: %v", after)
	}
}

func TestFrenchNumbers(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{formatGrade(14.5), "14,50"},
		{formatGrade(14.125), "14,13"},
		{formatGrade(20), "20,00"},
		{formatGrade(0), "0,00"},
		{formatNumber(29), "29"},
		{formatNumber(29.5), "29,5"},
		{formatNumber(0.1 + 0.2), "0,3"},
		{formatSignedPoints(1), "+1"},
		{formatSignedPoints(-0.5), "-0,5"},
		{formatSignedPoints(0.25), "+0,25"},
		{formatSignedPoints(-0.001), "0"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func findRect(p pdftest.Page, op string, col rgb) (pdftest.RectPaint, bool) {
	for _, r := range p.Rects {
		c := r.Stroke
		if op == "f" {
			c = r.Fill
		}
		if r.Op == op && len(c) == 3 && near(c[0], col[0]) && near(c[1], col[1]) && near(c[2], col[2]) {
			return r, true
		}
	}
	return pdftest.RectPaint{}, false
}

func near(a, b float64) bool { return math.Abs(a-b) < 0.01 }

func nearRect(a, b types.Rectangle) bool {
	return near(a.LL.X, b.LL.X) && near(a.LL.Y, b.LL.Y) && near(a.UR.X, b.UR.X) && near(a.UR.Y, b.UR.Y)
}

func TestConcurrentOperations(t *testing.T) {
	// The library holds process-wide pdfcpu state (config, the user-font
	// directory); concurrent callers must not race on it.
	copyPDF := readTestdata(t, "copy-a4-4p.pdf")
	scan := readTestdata(t, "class-a3-odd-scan.pdf")
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			var err error
			if i%2 == 0 {
				_, err = Burn(copyPDF, nil, sampleSummary())
			} else {
				_, err = SplitScan(scan, 4, nil)
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
