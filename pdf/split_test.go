package pdf

import (
	"github.com/korrigo/korrigo/pdf/pdftest"

	"fmt"
	"math"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

func TestSplitScanClassA3(t *testing.T) {
	in := readTestdata(t, "class-a3-6students.pdf")
	var calls [][2]int
	booklets, err := SplitScan(in, 4, func(done, total int) { calls = append(calls, [2]int{done, total}) })
	if err != nil {
		t.Fatal(err)
	}
	if len(booklets) != 6 {
		t.Fatalf("got %d booklets, want 6", len(booklets))
	}
	for s, b := range booklets {
		if b.PageCount != 4 || b.Short {
			t.Errorf("booklet %d: pageCount=%d short=%v, want 4 pages, not short", s+1, b.PageCount, b.Short)
		}
		// Each student's two A3 scans, outside sheet first.
		if want := []int{2*s + 1, 2*s + 2, 2*s + 2, 2*s + 1}; fmt.Sprint(b.ScanPages) != fmt.Sprint(want) {
			t.Errorf("booklet %d: scanPages %v, want %v", s+1, b.ScanPages, want)
		}
		assertBookletPages(t, b, s+1, []int{1, 2, 3, 4})
	}
	// Progress per A4 page: 0/24, 1/24 … 24/24, one step at a time.
	if len(calls) != 25 {
		t.Fatalf("progress calls %v, want 0/24 … 24/24", calls)
	}
	for i, c := range calls {
		if c != [2]int{i, 24} {
			t.Errorf("progress call %d = %v, want %d/24", i, c, i)
		}
	}
}

func TestSplitScanOddA3Count(t *testing.T) {
	// Five A3 scans: two complete sheets, then the outside of a third sheet
	// whose inside never reached the scanner.
	in := readTestdata(t, "class-a3-odd-scan.pdf")
	booklets, err := SplitScan(in, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(booklets) != 3 {
		t.Fatalf("got %d booklets, want 3", len(booklets))
	}
	for s := range 2 {
		if booklets[s].Short {
			t.Errorf("booklet %d marked short", s+1)
		}
		assertBookletPages(t, booklets[s], s+1, []int{1, 2, 3, 4})
	}
	last := booklets[2]
	if !last.Short || last.PageCount != 2 {
		t.Fatalf("last booklet: pageCount=%d short=%v, want 2 pages, short", last.PageCount, last.Short)
	}
	assertBookletPages(t, last, 3, []int{1, 4})
}

func TestSplitScanA4PagesKept(t *testing.T) {
	in := readTestdata(t, "copy-a4-8p.pdf")
	booklets, err := SplitScan(in, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(booklets) != 2 {
		t.Fatalf("got %d booklets, want 2", len(booklets))
	}
	for i, b := range booklets {
		pages := pdftest.Scan(t, b.PDF)
		for p, sp := range pages {
			want := fmt.Sprintf("KGT s=04 p=%d", 4*i+p+1)
			if got := sp.VisibleText(); got != want {
				t.Errorf("booklet %d page %d: text %q, want %q", i+1, p+1, got, want)
			}
			if w, h := sp.Media.Width(), sp.Media.Height(); w != 595 || h != 842 {
				t.Errorf("booklet %d page %d: size %gx%g, want 595x842", i+1, p+1, w, h)
			}
		}
	}
}

func TestSplitScanHonoursMediaBoxOriginAndRotate(t *testing.T) {
	// Scanners differ: one writes an offset MediaBox, another stores the A3
	// sheet portrait and turns it with /Rotate. Both must cut on the
	// halves the reader sees.
	offset := testPage{x0: 100, y0: 50, w: 1190, h: 842, texts: []testText{
		{x: 130, y: 870, s: "L1"}, {x: 725, y: 870, s: "R1"},
	}}
	offset2 := testPage{x0: 100, y0: 50, w: 1190, h: 842, texts: []testText{
		{x: 130, y: 870, s: "L2"}, {x: 725, y: 870, s: "R2"},
	}}
	// Stored 842x1190, shown turned 90° clockwise: the displayed left half
	// is the lower half of user space.
	rotated := testPage{w: 842, h: 1190, rotate: 90, texts: []testText{
		{x: 400, y: 300, s: "L3"}, {x: 400, y: 900, s: "R3"},
	}}
	rotated2 := testPage{w: 842, h: 1190, rotate: 270, texts: []testText{
		{x: 400, y: 900, s: "L4"}, {x: 400, y: 300, s: "R4"},
	}}
	in := buildPDF(t, []testPage{offset, offset2, rotated, rotated2})
	booklets, err := SplitScan(in, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"R1", "L2", "R2", "L1"}, {"R3", "L4", "R4", "L3"}}
	if len(booklets) != 2 {
		t.Fatalf("got %d booklets, want 2", len(booklets))
	}
	for b, bk := range booklets {
		pages := pdftest.Scan(t, bk.PDF)
		for i, p := range pages {
			if got := p.VisibleText(); got != want[b][i] {
				t.Errorf("booklet %d page %d: text %q, want %q", b+1, i+1, got, want[b][i])
			}
			w, h := p.Media.Width(), p.Media.Height()
			if p.Rotate == 90 || p.Rotate == 270 {
				w, h = h, w
			}
			if w != 595 || h != 842 {
				t.Errorf("booklet %d page %d: shown %gx%g, want 595x842", b+1, i+1, w, h)
			}
		}
	}
}

func TestA4SequenceMixedPages(t *testing.T) {
	a3 := pageGeom{box: *types.RectForDim(1190, 842)}
	a4 := pageGeom{box: *types.RectForDim(595, 842)}
	geoms := []pageGeom{a4, a3, a3, a3, a4}
	var got []string
	for _, p := range a4Sequence(geoms) {
		side := "full"
		if geoms[p.page-1].landscape() {
			side = "L"
			if p.box.LL.X > 0 {
				side = "R"
			}
		}
		got = append(got, fmt.Sprintf("%d%s", p.page, side))
	}
	want := "[1full 2R 3L 3R 2L 4R 4L 5full]"
	if fmt.Sprint(got) != want {
		t.Fatalf("sequence %v, want %s", got, want)
	}
}

func TestSplitScanRejectsBadInput(t *testing.T) {
	if _, err := SplitScan(readTestdata(t, "copy-a4-4p.pdf"), 0, nil); err == nil {
		t.Fatal("pagesPerBooklet 0 accepted")
	}
	_, err := SplitScan(readTestdata(t, "bad-truncated.pdf"), 4, nil)
	assertReason(t, err, ReasonTruncated)
}

func TestImportCopyA4(t *testing.T) {
	b, err := ImportCopy(readTestdata(t, "copy-a4-4p.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	if b.PageCount != 4 || b.Short {
		t.Fatalf("pageCount=%d short=%v", b.PageCount, b.Short)
	}
	assertBookletPages(t, b, 1, []int{1, 2, 3, 4})
}

func TestImportCopyCutsA3(t *testing.T) {
	// A student who scanned their folded sheet themselves.
	b, err := ImportCopy(readTestdata(t, "class-a3-6students.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	if b.PageCount != 24 {
		t.Fatalf("pageCount=%d, want 24", b.PageCount)
	}
	pages := pdftest.Scan(t, b.PDF)
	if got := pages[0].VisibleText(); got != "KGT s=01 p=1" {
		t.Fatalf("page 1 text %q", got)
	}
	if got := pages[23].VisibleText(); got != "KGT s=06 p=4" {
		t.Fatalf("page 24 text %q", got)
	}
}

// assertBookletPages checks that page i of the booklet shows exactly the
// text layer "KGT s=<student> p=<want[i]>" and is a true A4 half.
func assertBookletPages(t *testing.T, b Booklet, student int, want []int) {
	t.Helper()
	pages := pdftest.Scan(t, b.PDF)
	if len(pages) != len(want) || b.PageCount != len(want) {
		t.Fatalf("student %d: %d pages (PageCount %d), want %d", student, len(pages), b.PageCount, len(want))
	}
	for i, p := range pages {
		exp := fmt.Sprintf("KGT s=%02d p=%d", student, want[i])
		if got := p.VisibleText(); got != exp {
			t.Errorf("student %d page %d: visible text %q, want %q", student, i+1, got, exp)
		}
		// Half of the 1190-point A3 width, full height: A4 (595×842).
		if w, h := p.Media.Width(), p.Media.Height(); math.Abs(w-595) > 0.01 || math.Abs(h-842) > 0.01 {
			t.Errorf("student %d page %d: MediaBox %v, want 595x842", student, i+1, p.Media)
		}
	}
}

func assertReason(t *testing.T, err error, reason string) {
	t.Helper()
	ipe, ok := asInvalid(err)
	if !ok {
		t.Fatalf("got %v (%T), want *InvalidPDFError %s", err, err, reason)
	}
	if ipe.Reason != reason {
		t.Fatalf("reason %q, want %q (%v)", ipe.Reason, reason, err)
	}
}
