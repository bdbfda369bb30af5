package pdf

import (
	"github.com/korrigo/korrigo/pdf/pdftest"

	"bytes"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// hostilePDF has every kind of active or private content the sanitiser must
// strip, on an A4 page and an A3 sheet.
func hostilePDF(t testing.TB) []byte {
	return buildPDF(t, []testPage{
		{w: 595, h: 842, jsAnnot: true, texts: []testText{{x: 50, y: 800, s: "page one"}}},
		{w: 1190, h: 842, jsAnnot: true, texts: []testText{{x: 50, y: 800, s: "left"}, {x: 650, y: 800, s: "right"}}},
	}, testDoc{openActionJS: true, embeddedFile: true, acroForm: true, namesJS: true, info: "Jean Dupont"})
}

// forbidden are strings that must not appear anywhere in a sanitised PDF.
var forbidden = []string{
	"/JavaScript", "/JS", "/OpenAction", "/AA", "/Annots", "/Annot", "/AcroForm",
	"/EmbeddedFile", "/Filespec", "/Widget", "/Link",
	"app.alert", "payload", "MZ this would be", "Jean Dupont", "secret note",
}

func TestHostileFixtureIsHostile(t *testing.T) {
	// Guard against a fixture that silently lost its payload: then the
	// sanitiser tests would pass for the wrong reason.
	dump := objectDump(t, hostilePDF(t))
	for _, s := range forbidden {
		if !strings.Contains(dump, s) {
			t.Errorf("fixture lacks %q", s)
		}
	}
}

func TestSanitizeStripsActiveContent(t *testing.T) {
	out, err := Sanitize(hostilePDF(t))
	if err != nil {
		t.Fatal(err)
	}
	assertClean(t, out)
	pages := pdftest.Scan(t, out)
	if len(pages) != 2 {
		t.Fatalf("%d pages, want 2", len(pages))
	}
	if got := pages[0].VisibleText(); got != "page one" {
		t.Errorf("page 1 text %q", got)
	}
	if got := pages[1].VisibleText(); got != "left right" {
		t.Errorf("page 2 text %q", got)
	}
}

func TestSplitAndImportOutputsAreSanitized(t *testing.T) {
	in := hostilePDF(t)
	booklets, err := SplitScan(in, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range booklets {
		assertClean(t, b.PDF)
	}
	b, err := ImportCopy(in)
	if err != nil {
		t.Fatal(err)
	}
	assertClean(t, b.PDF)
	pages := pdftest.Scan(t, b.PDF)
	var texts []string
	for _, p := range pages {
		texts = append(texts, p.VisibleText())
	}
	if got := strings.Join(texts, "|"); got != "page one|right|left" {
		t.Errorf("import copy pages %q, want page one|right|left", got)
	}
}

func TestSplitBookletsHoldOnlyTheirOwnScans(t *testing.T) {
	in := readTestdata(t, "class-a3-6students.pdf")
	booklets, err := SplitScan(in, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, b := range booklets {
		total += len(b.PDF)
	}
	// Each booklet carries its own two sheets' images once; anything near
	// 6× the input would mean every booklet drags the whole scan along.
	if total > len(in)*5/4 {
		t.Fatalf("booklets total %d bytes for a %d-byte scan", total, len(in))
	}
}

func TestCopierSurvivesCycles(t *testing.T) {
	// A form XObject listing itself in its own resources: the copier must
	// terminate and keep the self-reference.
	w := &rawPDF{}
	cat := w.reserve()
	pages := w.reserve()
	form := w.reserve()
	w.set(form, "<</Type/XObject/Subtype/Form/BBox[0 0 10 10]/Resources<</XObject<</Me 3 0 R>>>>/Length 0>>\nstream\n\nendstream")
	content := w.addStream("", "/Me Do")
	page := w.add("<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Resources<</XObject<</Me 3 0 R>>>>/Contents " + strconv.Itoa(content) + " 0 R>>")
	w.set(pages, "<</Type/Pages/Count 1/Kids["+strconv.Itoa(page)+" 0 R]>>")
	w.set(cat, "<</Type/Catalog/Pages 2 0 R>>")
	out, err := Sanitize(w.bytes(cat, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := validateBytes(out, 0); err != nil {
		t.Fatal(err)
	}
}

func assertClean(t *testing.T, pdf []byte) {
	t.Helper()
	dump := objectDump(t, pdf)
	for _, s := range forbidden {
		if strings.Contains(dump, s) {
			t.Errorf("sanitised output contains %q", s)
		}
	}
}

// objectDump renders every object of pdf, with stream contents decoded, so
// tests can search it regardless of compression and object streams.
func objectDump(t testing.TB, pdf []byte) string {
	t.Helper()
	ctx, err := api.ReadContext(bytes.NewReader(pdf), newConfig())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := api.ValidateContext(ctx); err != nil {
		t.Fatalf("validate: %v", err)
	}
	nrs := make([]int, 0, len(ctx.Table))
	for nr := range ctx.Table {
		nrs = append(nrs, nr)
	}
	sort.Ints(nrs)
	var sb strings.Builder
	for _, nr := range nrs {
		o, err := ctx.Dereference(*types.NewIndirectRef(nr, 0))
		if err != nil || o == nil {
			continue
		}
		sb.WriteString(o.PDFString())
		sb.WriteByte('\n')
		if sd, ok := o.(types.StreamDict); ok {
			if err := sd.Decode(); err == nil {
				sb.Write(sd.Content)
				sb.WriteByte('\n')
			}
		}
	}
	if ctx.Info != nil {
		if o, err := ctx.Dereference(*ctx.Info); err == nil && o != nil {
			sb.WriteString(o.PDFString())
		}
	}
	return sb.String()
}
