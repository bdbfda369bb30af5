package pdf

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

// Info describes a PDF that passed Validate.
type Info struct {
	PageCount int        `json:"pageCount"`
	Pages     []PageInfo `json:"pages"`
}

// PageInfo is one page's size in points as a reader sees it, that is after
// applying /Rotate to the visible box.
type PageInfo struct {
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
	Rotate int     `json:"rotate"`
}

// Landscape reports whether SplitScan treats the page as an A3 sheet.
func (p PageInfo) Landscape() bool { return p.Height > 0 && p.Width/p.Height > landscapeRatio }

// Validate checks that r holds a PDF Korrigo can process: PDF header, parses,
// not encrypted, 1..maxPages pages (maxPages <= 0 means no upper bound).
// A refused file yields an *InvalidPDFError; other errors are I/O errors.
//
// pdfcpu may panic or hang on hostile input: call this through Runner for
// user uploads.
func Validate(r io.ReadSeeker, size int64, maxPages int) (Info, error) {
	_, geoms, err := open(r, size, maxPages)
	if err != nil {
		return Info{}, err
	}
	info := Info{PageCount: len(geoms), Pages: make([]PageInfo, len(geoms))}
	for i, g := range geoms {
		w, h := g.displaySize()
		info.Pages[i] = PageInfo{Width: w, Height: h, Rotate: g.rotate}
	}
	return info, nil
}

// openBytes is open for in-memory input.
func openBytes(in []byte, maxPages int) (*model.Context, []pageGeom, error) {
	return open(bytes.NewReader(in), int64(len(in)), maxPages)
}

// open parses a PDF and returns its context and page geometry, refusing what
// Validate refuses. Every operation on user data starts here so that a file
// that slipped past the upload check still fails with a typed reason.
func open(r io.ReadSeeker, size int64, maxPages int) (*model.Context, []pageGeom, error) {
	if size < 0 {
		n, err := r.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, nil, fmt.Errorf("open pdf: size: %w", err)
		}
		size = n
	}
	if size == 0 {
		return nil, nil, invalid(ReasonEmpty, nil)
	}
	if err := checkHeader(r); err != nil {
		return nil, nil, err
	}
	encrypted, err := hasEncryptEntry(r)
	if err != nil {
		return nil, nil, fmt.Errorf("open pdf: scan for encryption: %w", err)
	}
	if encrypted {
		return nil, nil, invalid(ReasonEncrypted, nil)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("open pdf: rewind: %w", err)
	}
	ctx, err := api.ReadContext(r, newConfig())
	if err != nil {
		return nil, nil, readError(r, size, err)
	}
	if ctx.Encrypt != nil {
		return nil, nil, invalid(ReasonEncrypted, nil)
	}
	// pdfcpu counts the pages while validating the page tree.
	if err := api.ValidateContext(ctx); err != nil {
		return nil, nil, invalid(ReasonUnparsable, err)
	}
	if ctx.PageCount < 1 {
		return nil, nil, invalid(ReasonNoPages, nil)
	}
	if maxPages > 0 && ctx.PageCount > maxPages {
		return nil, nil, tooManyPages(ctx.PageCount, maxPages)
	}
	bounds, err := ctx.PageBoundaries(nil)
	if err != nil {
		return nil, nil, invalid(ReasonUnparsable, err)
	}
	geoms := make([]pageGeom, len(bounds))
	for i, pb := range bounds {
		geoms[i] = geomFromBoundaries(pb)
	}
	return ctx, geoms, nil
}

func checkHeader(r io.ReadSeeker) error {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("open pdf: rewind: %w", err)
	}
	head := make([]byte, 5)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("open pdf: read header: %w", err)
	}
	// Readers tolerate junk before the header, but a scanner or a browser
	// upload never produces it; being strict keeps "not a PDF" unambiguous.
	if !bytes.Equal(head[:n], []byte("%PDF-")) {
		return invalid(ReasonNotPDF, nil)
	}
	return nil
}

// readError classifies a parse failure. A file cut short (interrupted
// upload, full disk) has lost its trailing %%EOF marker; anything else that
// pdfcpu cannot read is damaged.
func readError(r io.ReadSeeker, size int64, err error) error {
	if errors.Is(err, pdfcpu.ErrWrongPassword) {
		return invalid(ReasonEncrypted, err)
	}
	tail, terr := readTail(r, size, 1024)
	if terr != nil {
		return fmt.Errorf("open pdf: read tail: %w", terr)
	}
	if !bytes.Contains(tail, []byte("%%EOF")) {
		return invalid(ReasonTruncated, err)
	}
	return invalid(ReasonUnparsable, err)
}

func readTail(r io.ReadSeeker, size int64, n int64) ([]byte, error) {
	off := max(size-n, 0)
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(r, n))
}

// hasEncryptEntry looks for an /Encrypt entry (a trailer or xref-stream key)
// in the raw bytes. pdfcpu only notices an indirect /Encrypt reference and
// silently reads a file whose trailer holds the dictionary inline, handing
// back ciphertext as page content; this scan closes that gap.
func hasEncryptEntry(r io.ReadSeeker) (bool, error) {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	const key = "/Encrypt"
	const chunk = 1 << 20
	// The overlap keeps a key (and the bytes that follow it) that straddles
	// two chunks visible in one window.
	const overlap = 64
	buf := make([]byte, chunk+overlap)
	carry := 0
	for {
		n, err := io.ReadFull(r, buf[carry:])
		window := buf[:carry+n]
		if encryptKeyIn(window, key) {
			return true, nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return false, nil
			}
			return false, err
		}
		carry = copy(buf, window[len(window)-overlap:])
	}
}

// encryptKeyIn reports an /Encrypt key followed by a dictionary or an
// indirect reference, which tells it apart from /EncryptMetadata and from
// the word appearing in text.
func encryptKeyIn(b []byte, key string) bool {
	for {
		i := bytes.Index(b, []byte(key))
		if i < 0 {
			return false
		}
		rest := bytes.TrimLeft(b[i+len(key):], " \t\r\n\f\x00")
		if bytes.HasPrefix(rest, []byte("<<")) || (len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9') {
			return true
		}
		b = b[i+len(key):]
	}
}
