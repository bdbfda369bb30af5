package jobs_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"

	"github.com/korrigo/korrigo/pdf"
)

func mergeCopies(b *testing.B, name string, n int, pages string) []byte {
	return mergeCopiesT(b, name, n, pages)
}

func mergeCopiesT(b testing.TB, name string, n int, pages string) []byte {
	b.Helper()
	src := readTestdata(b, name)
	rs := make([]io.ReadSeeker, n)
	for i := range rs {
		rs[i] = bytes.NewReader(src)
	}
	api.DisableConfigDir()
	conf := model.NewDefaultConfiguration()
	conf.Optimize, conf.OptimizeBeforeWriting = false, false
	var merged, out bytes.Buffer
	if err := api.MergeRaw(rs, &merged, false, conf); err != nil {
		b.Fatal(err)
	}
	if err := api.Collect(bytes.NewReader(merged.Bytes()), &out, []string{pages}, conf); err != nil {
		b.Fatal(err)
	}
	return out.Bytes()
}

// BenchmarkSplitJob400Pages: the SPLIT_SCAN job's PDF step as it runs in
// production, through the isolated child process: a 200-sheet A3 scan cut
// into 400 A4 pages (100 booklets of 4). Reports pages/s.
func BenchmarkSplitJob400Pages(b *testing.B) {
	scan := mergeCopies(b, "class-a3-6students.pdf", 17, "1-200")
	r := &pdf.Runner{}
	b.SetBytes(int64(len(scan)))
	for b.Loop() {
		bs, err := r.SplitScan(context.Background(), scan, 4, nil)
		if err != nil || len(bs) != 100 {
			b.Fatalf("%d booklets, %v", len(bs), err)
		}
	}
	b.ReportMetric(400*float64(b.N)/b.Elapsed().Seconds(), "pages/s")
}

// BenchmarkFinalize12Pages40Marks: the FINALIZE_COPY job's render step
// through the child process: a 12-page copy, 40 annotations, summary page.
// Reports ms per finalized copy.
func BenchmarkFinalize12Pages40Marks(b *testing.B) {
	cp := mergeCopies(b, "copy-a4-4p.pdf", 3, "1-12")
	kinds := []string{pdf.KindComment, pdf.KindHighlight, pdf.KindError, pdf.KindBonus}
	var marks []pdf.PageMarks
	for p := range 12 {
		pm := pdf.PageMarks{PageIndex: p}
		for i := range 40 / 12 {
			pts := 0.5
			pm.Marks = append(pm.Marks, pdf.Mark{X: 0.1, Y: 0.1 + 0.2*float64(i), W: 0.5, H: 0.1,
				Kind: kinds[(p+i)%4], Text: "Très bien, attention à l'unité", Points: &pts})
		}
		marks = append(marks, pm)
	}
	marks[0].Marks = append(marks[0].Marks, marks[1].Marks[:4]...) // 40 in all
	sum := pdf.Summary{AnonymousID: "a1b2-001", Grade20: 15, Total: 15, Max: 20, Appreciation: "Travail sérieux."}
	for i := range 18 {
		sum.Questions = append(sum.Questions, pdf.QuestionLine{Label: "Question " + string(rune('A'+i)), Points: 1, Max: 1})
	}
	r := &pdf.Runner{}
	for b.Loop() {
		out, err := r.Burn(context.Background(), cp, marks, sum)
		if err != nil || len(out) == 0 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/copy")
}

// BenchmarkMask12Pages: masking a 12-page copy of 4-page booklets (3 header
// pages) through the child process, what a corrector's first pdfUrl costs
// (later requests are served from the cached blob). Reports ms per copy.
func BenchmarkMask12Pages(b *testing.B) {
	booklets, err := pdf.SplitScan(readTestdata(b, "class-a3-6students.pdf"), 12, nil)
	if err != nil || len(booklets) == 0 || booklets[0].PageCount != 12 {
		b.Fatalf("booklets %v %v", len(booklets), err)
	}
	r := &pdf.Runner{}
	for b.Loop() {
		if _, err := r.Mask(context.Background(), booklets[0].PDF, 4); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/copy")
}

// TestWriteBenchScan writes the 200-sheet A3 scan of BenchmarkSplitJob400Pages
// to $KORRIGO_BENCH_SCAN (tools/bench/run.sh gives it to qpdf); skipped
// otherwise.
func TestWriteBenchScan(t *testing.T) {
	path := os.Getenv("KORRIGO_BENCH_SCAN")
	if path == "" {
		t.Skip("KORRIGO_BENCH_SCAN not set")
	}
	scan := mergeCopiesT(t, "class-a3-6students.pdf", 17, "1-200")
	if err := os.WriteFile(path, scan, 0o600); err != nil {
		t.Fatal(err)
	}
}
