package pdf

import (
	"errors"
	"fmt"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

// Booklet is one student's copy cut out of a scan: a sanitised PDF of A4
// pages in reading order.
type Booklet struct {
	PDF       []byte `json:"-"`
	PageCount int    `json:"pageCount"`
	// Short is set on a last booklet with fewer pages than asked for,
	// typically a sheet missing from the scanner's feed.
	Short bool `json:"short"`
	// ScanPages gives, for each page of the booklet, the 1-based page of
	// the uploaded scan it was cut from, so an admin can find the sheet.
	ScanPages []int `json:"scanPages"`
}

// SplitScan cuts a class scan into booklets of pagesPerBooklet A4 pages.
//
// Landscape pages (width/height > 1.2 as displayed) are A3 sheets folded into
// a booklet; each is cut into its left and right halves. A folded sheet is
// scanned as [P4|P1] then [P2|P3], so each pair of consecutive A3 scans gives
// P1 P2 P3 P4. A lone A3 scan (odd count, or an A4 page follows) gives its
// right half then its left half (P1 then P4 of a sheet whose inside is
// missing). Portrait pages are taken as they are. Every booklet is rebuilt
// from page content only, like Sanitize.
//
// progress, if not nil, is called with the number of A4 pages done out of
// all the scan's A4 pages: once at 0, then after each page (the last page of
// a booklet counts when its booklet is written), so the count reaches the
// total only when every booklet is ready.
func SplitScan(in []byte, pagesPerBooklet int, progress func(done, total int)) ([]Booklet, error) {
	if pagesPerBooklet < 1 {
		return nil, fmt.Errorf("split scan: pages per booklet must be at least 1, got %d", pagesPerBooklet)
	}
	src, geoms, err := openBytes(in, 0)
	if err != nil {
		return nil, fmt.Errorf("split scan: %w", err)
	}
	pages := a4Sequence(geoms)
	total := len(pages)
	report := func(done int) {
		if progress != nil {
			progress(done, total)
		}
	}
	report(0)
	booklets := make([]Booklet, 0, (total+pagesPerBooklet-1)/pagesPerBooklet)
	for start := 0; start < len(pages); start += pagesPerBooklet {
		group := pages[start:min(start+pagesPerBooklet, len(pages))]
		b, err := booklet(src, group, func(i int) {
			if i < len(group)-1 {
				report(start + i + 1)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("split scan: booklet %d: %w", len(booklets)+1, err)
		}
		b.Short = len(group) < pagesPerBooklet
		booklets = append(booklets, b)
		report(start + len(group))
	}
	return booklets, nil
}

// ImportCopy turns one student's PDF into a copy: A3 pages are cut like in
// SplitScan, A4 pages kept, everything rebuilt from page content only.
func ImportCopy(in []byte) (Booklet, error) {
	src, geoms, err := openBytes(in, 0)
	if err != nil {
		return Booklet{}, fmt.Errorf("import copy: %w", err)
	}
	b, err := booklet(src, a4Sequence(geoms), nil)
	if err != nil {
		return Booklet{}, fmt.Errorf("import copy: %w", err)
	}
	return b, nil
}

func booklet(src *model.Context, pages []pageSource, onPage func(i int)) (Booklet, error) {
	if len(pages) == 0 {
		return Booklet{}, errors.New("no pages")
	}
	out, err := rebuildWithProgress(src, pages, onPage)
	if err != nil {
		return Booklet{}, err
	}
	b := Booklet{PDF: out, PageCount: len(pages), ScanPages: make([]int, len(pages))}
	for i, p := range pages {
		b.ScanPages[i] = p.page
	}
	return b, nil
}

// a4Sequence lists the A4 pages of a scan in reading order.
func a4Sequence(geoms []pageGeom) []pageSource {
	out := make([]pageSource, 0, 2*len(geoms))
	for i := 0; i < len(geoms); {
		g := geoms[i]
		if !g.landscape() {
			out = append(out, pageSource{page: i + 1, box: g.box})
			i++
			continue
		}
		outL, outR := g.halves()
		if i+1 < len(geoms) && geoms[i+1].landscape() {
			// Outside of the sheet [P4|P1], then inside [P2|P3].
			inL, inR := geoms[i+1].halves()
			out = append(out,
				pageSource{page: i + 1, box: outR},
				pageSource{page: i + 2, box: inL},
				pageSource{page: i + 2, box: inR},
				pageSource{page: i + 1, box: outL},
			)
			i += 2
			continue
		}
		out = append(out, pageSource{page: i + 1, box: outR}, pageSource{page: i + 1, box: outL})
		i++
	}
	return out
}
