package pdf

import (
	"bytes"
	"io"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
)

// BenchmarkSplitScan400Pages splits a 200-sheet A3 scan (400 A4 pages, 100
// booklets of 4), near the largest upload the design allows (500 pages).
// The scan is 17 merged copies of the 12-sheet test class, trimmed to 200
// sheets: every sheet keeps its own image objects, as in a real scan, so
// the file is about 24 MB rather than one set of images shared 17 times.
func BenchmarkSplitScan400Pages(b *testing.B) {
	class := readTestdata(b, "class-a3-6students.pdf")
	copies := make([]io.ReadSeeker, 17)
	for i := range copies {
		copies[i] = bytes.NewReader(class)
	}
	// pdfcpu would otherwise notice the copies' images are identical and
	// keep one of each.
	conf := newConfig()
	conf.Optimize = false
	conf.OptimizeBeforeWriting = false
	var merged, scan bytes.Buffer
	if err := api.MergeRaw(copies, &merged, false, conf); err != nil {
		b.Fatal(err)
	}
	if err := api.Collect(bytes.NewReader(merged.Bytes()), &scan, []string{"1-200"}, conf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(scan.Len()))
	b.ReportAllocs()
	for b.Loop() {
		booklets, err := SplitScan(scan.Bytes(), 4, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(booklets) != 100 {
			b.Fatalf("%d booklets", len(booklets))
		}
	}
}
