package pdf

import (
	"errors"
	"fmt"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// wholePages lists every page of a document uncut.
func wholePages(geoms []pageGeom) []pageSource {
	pages := make([]pageSource, len(geoms))
	for i, g := range geoms {
		pages[i] = pageSource{page: i + 1, box: g.box}
	}
	return pages
}

// pageSource is one page of a rebuilt document: which source page it shows
// and the part of it (in source user space) that becomes its MediaBox.
type pageSource struct {
	page int // 1-based
	box  types.Rectangle
}

// rebuild writes a new document whose pages are built from scratch: each
// gets only a MediaBox, its /Rotate, its content streams and the resources
// they draw with. Objects are copied by walking from those entries, so
// nothing the pages do not draw with can reach the output, and the copier
// drops the few places where active content could still hide.
func rebuild(src *model.Context, pages []pageSource) ([]byte, error) {
	return rebuildWithProgress(src, pages, nil)
}

// rebuildWithProgress is rebuild calling onPage(i) once page i is copied.
func rebuildWithProgress(src *model.Context, pages []pageSource, onPage func(i int)) ([]byte, error) {
	dst, err := rebuildContextProgress(src, pages, onPage)
	if err != nil {
		return nil, err
	}
	return writeContext(dst)
}

// rebuildContext is rebuild without the final write, for callers that draw
// on the new pages first. Page i of the result has MediaBox pages[i].box,
// the source page's /Rotate, and its own direct /Resources dictionary.
func rebuildContext(src *model.Context, pages []pageSource) (*model.Context, error) {
	return rebuildContextProgress(src, pages, nil)
}

func rebuildContextProgress(src *model.Context, pages []pageSource, onPage func(i int)) (*model.Context, error) {
	dst, err := pdfcpu.CreateContextWithXRefTable(newConfig(), types.PaperSize["A4"])
	if err != nil {
		return nil, fmt.Errorf("rebuild: new document: %w", err)
	}
	pagesRef, pagesDict, err := pageTree(dst)
	if err != nil {
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	cp := newCopier(src.XRefTable, dst.XRefTable)
	for i, ps := range pages {
		page, err := cp.page(ps)
		if err != nil {
			return nil, fmt.Errorf("rebuild: page %d: %w", ps.page, err)
		}
		if err := appendPage(dst, pagesRef, pagesDict, page); err != nil {
			return nil, fmt.Errorf("rebuild: page %d: %w", ps.page, err)
		}
		if onPage != nil {
			onPage(i)
		}
	}
	return dst, nil
}

// pageTree returns the root of ctx's page tree.
func pageTree(ctx *model.Context) (types.IndirectRef, types.Dict, error) {
	ref, err := ctx.Pages()
	if err != nil {
		return types.IndirectRef{}, nil, fmt.Errorf("page tree: %w", err)
	}
	if ref == nil {
		return types.IndirectRef{}, nil, errors.New("page tree: missing")
	}
	d, err := ctx.DereferenceDict(*ref)
	if err != nil {
		return types.IndirectRef{}, nil, fmt.Errorf("page tree: %w", err)
	}
	return *ref, d, nil
}

// appendPage adds page as the last page of ctx, directly under the root.
func appendPage(ctx *model.Context, pagesRef types.IndirectRef, pagesDict, page types.Dict) error {
	page["Parent"] = pagesRef
	ref, err := ctx.IndRefForNewObject(page)
	if err != nil {
		return err
	}
	if err := model.AppendPageTree(ref, 1, pagesDict); err != nil {
		return err
	}
	ctx.PageCount++
	return nil
}
