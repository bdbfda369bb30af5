package pdf

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"

	"github.com/korrigo/korrigo/pdf/pdftest"
)

// topZone is the identity zone of a page in user space (the pages of these
// tests are unrotated).
func topZone(p pdftest.Page) types.Rectangle {
	m := p.Media
	return *types.NewRectangle(m.LL.X, m.UR.Y-m.Height()*IdentityZone, m.UR.X, m.UR.Y)
}

func TestMaskRemovesTheIdentityZoneOfHeaderPages(t *testing.T) {
	booklets, err := SplitScan(readTestdata(t, "class-a3-6students.pdf"), 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := booklets[0].PDF
	out, err := Mask(src, 4)
	if err != nil {
		t.Fatal(err)
	}
	before, after := pdftest.Scan(t, src), pdftest.Scan(t, out)
	if len(after) != 4 {
		t.Fatalf("%d pages, want 4", len(after))
	}
	// The unmasked booklet has ink and the name line in page 1's zone, and
	// carries the other half of each A3 sheet off-page: the test has
	// something to remove.
	if in, _ := pdftest.Ink(t, src, 0, topZone(before[0])); in == 0 {
		t.Fatal("test scan has no ink in page 1's identity zone")
	}
	if len(before[0].Texts) < 2 {
		t.Fatalf("test booklet page 1 has %d text runs, want the off-page half too", len(before[0].Texts))
	}
	for i, p := range after {
		zone := topZone(p)
		var masks []pdftest.RectPaint
		for _, r := range p.Rects {
			if r.Op == "f" && len(r.Fill) == 1 && r.Fill[0] == maskGrey {
				masks = append(masks, r)
			}
		}
		in, elsewhere := pdftest.Ink(t, out, i, zone)
		all := make([]string, len(p.Texts))
		for k, tr := range p.Texts {
			all[k] = tr.Text
		}
		if i == 0 {
			if len(masks) != 1 || masks[0].R != zone {
				t.Errorf("page 1: mask rectangles %v, want one over %v", masks, zone)
			}
			// Nothing of the zone survives in the file: no text (even
			// invisible, even off the visible text), no ink in the pixels.
			if len(all) != 0 {
				t.Errorf("page 1: text %q survives masking", all)
			}
			if in != 0 {
				t.Errorf("page 1: %d dark pixels left in the identity zone", in)
			}
			if elsewhere == 0 {
				t.Errorf("page 1: the answers below the zone are gone too")
			}
			continue
		}
		if len(masks) != 0 {
			t.Errorf("page %d is not a header page but got a mask", i+1)
		}
		want := fmt.Sprintf("KGT s=01 p=%d", i+1)
		if strings.Join(all, " ") != want {
			t.Errorf("page %d: text %q, want only its own %q (off-page half dropped)", i+1, all, want)
		}
		bin, _ := pdftest.Ink(t, src, i, zone)
		if in != bin {
			t.Errorf("page %d: %d dark pixels at the top, want %d as before", i+1, in, bin)
		}
	}
	// No image hides in the file unreferenced: each page draws one image
	// (its half of the sheet), and the file holds exactly those.
	if n := countImages(t, out); n != 4 {
		t.Errorf("masked file holds %d images, want 4 (one per page)", n)
	}
}

func TestMaskEveryBookletStart(t *testing.T) {
	// An 8-page copy of an exam with 2-page booklets: pages 1, 3, 5, 7.
	out, err := Mask(readTestdata(t, "copy-a4-8p.pdf"), 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pdftest.Scan(t, out) {
		header := i%2 == 0
		if got := p.VisibleText() == ""; got != header {
			t.Errorf("page %d: text %q, header=%v", i+1, p.VisibleText(), header)
		}
		masked := false
		for _, r := range p.Rects {
			masked = masked || (r.Op == "f" && r.R == topZone(p))
		}
		if masked != header {
			t.Errorf("page %d: masked=%v, want %v", i+1, masked, header)
		}
	}
}

func TestMaskRotatedPageAndText(t *testing.T) {
	// A page shown turned a quarter clockwise: its displayed top is the
	// user-space left edge. Text there goes, text elsewhere stays.
	in := buildPDF(t, []testPage{{w: 842, h: 595, rotate: 90, texts: []testText{
		{x: 100, y: 300, s: "Nom: Zoe"}, {x: 800, y: 300, s: "Reponse"}}}})
	out, err := Mask(in, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := pdftest.Scan(t, out)[0]
	var texts []string
	for _, tr := range p.Texts {
		texts = append(texts, tr.Text)
	}
	if strings.Join(texts, "|") != "Reponse" {
		t.Errorf("texts %q, want only Reponse", texts)
	}
}

func countImages(t *testing.T, pdf []byte) int {
	t.Helper()
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	ctx, err := api.ReadContext(bytes.NewReader(pdf), conf)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for nr := range *ctx.XRefTable.Size {
		o, err := ctx.Dereference(*types.NewIndirectRef(nr, 0))
		if err != nil {
			continue
		}
		if sd, ok := o.(types.StreamDict); ok {
			if st := sd.Dict.NameEntry("Subtype"); st != nil && *st == "Image" {
				n++
			}
		}
	}
	return n
}
