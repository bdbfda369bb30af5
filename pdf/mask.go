package pdf

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"

	"github.com/pdfcpu/pdfcpu/pkg/filter"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// IdentityZone is the part of a header page (the first page of a booklet)
// where students write their name: the top quarter of the page as displayed.
const IdentityZone = 0.25

// maskGrey is the colour of the drawn mask (and of nothing else).
const maskGrey = 0.82

// Mask returns the copy as a corrector may see it: every page whose 0-based
// index is a multiple of pagesPerBooklet has its identity zone (the top
// IdentityZone of the page as displayed) removed, not just covered.
//
// What the output guarantees, for header pages:
//   - an opaque grey rectangle is drawn over the zone in the page's own
//     content stream, last, so no viewer setting or annotation toggle shows
//     what is under it;
//   - text drawn in or into the zone is deleted from the content (an OCR or
//     invisible text layer cannot be copied or extracted from the zone);
//   - the pixels of every scanned image that reaches into the zone are
//     painted white in the image data itself (8-bit Gray/RGB/CMYK/ICC and
//     1-bit images, Flate or JPEG encoded); an image in a format Korrigo
//     cannot rewrite (JBIG2, CCITT, JPEG 2000, indexed colour…), an inline
//     image or a form XObject that reaches into the zone is left out of the
//     page altogether (fail closed: the page loses that image rather than
//     leak a name).
//
// On every page, content drawn entirely outside the page's box (the other
// half of a cut A3 sheet) is dropped, so the unmasked half of a sheet cannot
// ride along, invisible, with its neighbour. Like Sanitize, the document is
// rebuilt from page content only, and objects no page draws are not copied.
func Mask(in []byte, pagesPerBooklet int) ([]byte, error) {
	if pagesPerBooklet < 1 {
		return nil, fmt.Errorf("mask: pages per booklet %d", pagesPerBooklet)
	}
	src, geoms, err := openBytes(in, 0)
	if err != nil {
		return nil, fmt.Errorf("mask: %w", err)
	}
	m := &masker{xref: src.XRefTable, redacted: map[redactKey]*types.IndirectRef{}}
	for i, g := range geoms {
		if err := m.page(i+1, g, i%pagesPerBooklet == 0); err != nil {
			return nil, fmt.Errorf("mask: page %d: %w", i+1, err)
		}
	}
	out, err := rebuild(src, wholePages(geoms))
	if err != nil {
		return nil, fmt.Errorf("mask: %w", err)
	}
	return out, nil
}

// IsHeaderPage reports whether page index i (0-based) carries the identity
// zone of its booklet.
func IsHeaderPage(i, pagesPerBooklet int) bool {
	return pagesPerBooklet > 0 && i%pagesPerBooklet == 0
}

type masker struct {
	xref     *model.XRefTable
	redacted map[redactKey]*types.IndirectRef
}

type redactKey struct {
	obj  int
	zone types.Rectangle
	ctm  matrix
}

// page rewrites page nr of the source in place: a filtered content stream,
// a resource dictionary naming only the XObjects that content still draws
// (redacted copies where needed), and, on a header page, the mask.
func (m *masker) page(nr int, g pageGeom, header bool) error {
	page, _, inh, err := m.xref.PageDict(nr, false)
	if err != nil {
		return err
	}
	content, err := m.content(page)
	if err != nil {
		return err
	}
	w, h := g.displaySize()
	var zone *types.Rectangle
	if header {
		z := g.userRect(0, h*(1-IdentityZone), w, h)
		zone = &z
	}
	xobjects := types.Dict{}
	if inh != nil && inh.Resources != nil {
		if d := inh.Resources.DictEntry("XObject"); d != nil {
			xobjects = d
		} else if o, ok := inh.Resources.Find("XObject"); ok {
			if d, err := m.xref.DereferenceDict(o); err == nil && d != nil {
				xobjects = d
			}
		}
	}
	f := &contentFilter{m: m, box: g.box, zone: zone, xobjects: xobjects, used: types.Dict{}}
	out := f.run(content)
	if zone != nil {
		fmt.Fprintf(out, "\nq %s g %s %s %s %s re f Q\n", num(maskGrey),
			num(zone.LL.X), num(zone.LL.Y), num(zone.Width()), num(zone.Height()))
	}
	res := types.Dict{}
	if inh != nil && inh.Resources != nil {
		for k, v := range inh.Resources {
			res[k] = v
		}
	}
	if len(f.used) > 0 {
		res["XObject"] = f.used
	} else {
		delete(res, "XObject")
	}
	page["Resources"] = res
	ref, err := newContentStream(m.xref, out.Bytes())
	if err != nil {
		return err
	}
	page["Contents"] = *ref
	return nil
}

// content is the page's content streams, decoded and joined by newlines
// (two streams may not be glued into one token).
func (m *masker) content(page types.Dict) ([]byte, error) {
	o, ok := page.Find("Contents")
	if !ok {
		return nil, nil
	}
	o, err := m.xref.Dereference(o)
	if err != nil || o == nil {
		return nil, err
	}
	var items []types.Object
	switch o := o.(type) {
	case types.StreamDict:
		items = []types.Object{o}
	case types.Array:
		items = o
	}
	var buf bytes.Buffer
	for _, it := range items {
		sd, _, err := m.xref.DereferenceStreamDict(it)
		if err != nil {
			return nil, fmt.Errorf("content stream: %w", err)
		}
		if sd == nil {
			continue
		}
		if err := sd.Decode(); err != nil {
			return nil, fmt.Errorf("content stream: %w", err)
		}
		buf.Write(sd.Content)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

// --- content filter ---

// matrix is a PDF transformation [a b c d e f].
type matrix [6]float64

var identityMatrix = matrix{1, 0, 0, 1, 0, 0}

// mul returns a·b: apply a first, then b.
func (a matrix) mul(b matrix) matrix {
	return matrix{
		a[0]*b[0] + a[1]*b[2], a[0]*b[1] + a[1]*b[3],
		a[2]*b[0] + a[3]*b[2], a[2]*b[1] + a[3]*b[3],
		a[4]*b[0] + a[5]*b[2] + b[4], a[4]*b[1] + a[5]*b[3] + b[5],
	}
}

func (a matrix) apply(x, y float64) (float64, float64) {
	return a[0]*x + a[2]*y + a[4], a[1]*x + a[3]*y + a[5]
}

// bounds is the bounding box of the rectangle [x0,x1]×[y0,y1] mapped by a.
func (a matrix) bounds(x0, y0, x1, y1 float64) types.Rectangle {
	r := types.Rectangle{LL: types.Point{X: math.Inf(1), Y: math.Inf(1)}, UR: types.Point{X: math.Inf(-1), Y: math.Inf(-1)}}
	for _, p := range [][2]float64{{x0, y0}, {x1, y0}, {x0, y1}, {x1, y1}} {
		x, y := a.apply(p[0], p[1])
		r.LL.X, r.LL.Y = math.Min(r.LL.X, x), math.Min(r.LL.Y, y)
		r.UR.X, r.UR.Y = math.Max(r.UR.X, x), math.Max(r.UR.Y, y)
	}
	return r
}

func overlaps(a, b types.Rectangle) bool {
	return a.LL.X < b.UR.X && b.LL.X < a.UR.X && a.LL.Y < b.UR.Y && b.LL.Y < a.UR.Y
}

// contentFilter copies a content stream, leaving out what may not be shown.
type contentFilter struct {
	m        *masker
	box      types.Rectangle  // the page's visible box, user space
	zone     *types.Rectangle // identity zone, user space; nil: not a header page
	xobjects types.Dict       // the page's XObject resources
	used     types.Dict       // XObjects the output draws (possibly redacted copies)
}

type operand struct {
	start int
	num   float64
	isNum bool
	name  string // for /Name operands
	n     int    // string length in bytes (text extent estimate)
}

type textState struct {
	size, hscale, rise, leading float64
}

// run returns the filtered content. Text-showing operators and XObjects are
// dropped whole (with their operands); everything else is copied verbatim,
// so the graphics state, marked content and the q/Q nesting stay intact.
func (f *contentFilter) run(content []byte) *bytes.Buffer {
	out := &bytes.Buffer{}
	ctm := identityMatrix
	var stack []matrix
	var tm, tlm matrix = identityMatrix, identityMatrix
	ts := textState{hscale: 1}
	var tsStack []textState
	var ops []operand
	emitted := 0
	drop := func(from, to int) {
		out.Write(content[emitted:from])
		emitted = to
	}
	nums := func(n int) ([]float64, bool) {
		if len(ops) < n {
			return nil, false
		}
		v := make([]float64, n)
		for i, o := range ops[len(ops)-n:] {
			if !o.isNum {
				return nil, false
			}
			v[i] = o.num
		}
		return v, true
	}
	nextLine := func(tx, ty float64) {
		tlm = matrix{1, 0, 0, 1, tx, ty}.mul(tlm)
		tm = tlm
	}
	// show reports whether a text run of n bytes at the current position
	// may stay, and advances the text matrix by an upper estimate.
	show := func(n int) bool {
		adv := float64(max(n, 1)) * ts.size * ts.hscale
		trm := matrix{1, 0, 0, 1, 0, ts.rise}.mul(tm).mul(ctm)
		// Glyphs of size s reach from about -0.3 s to 1.1 s around the baseline.
		b := trm.bounds(0, -0.3*ts.size, adv, 1.1*ts.size)
		tm = matrix{1, 0, 0, 1, adv, 0}.mul(tm)
		if !overlaps(b, f.box) {
			return false
		}
		return f.zone == nil || !overlaps(b, *f.zone)
	}
	tok := &cTokenizer{b: content}
	for {
		t, ok := tok.next()
		if !ok {
			break
		}
		if t.kind != tokOp {
			o := operand{start: t.start}
			switch t.kind {
			case tokNum:
				o.num, o.isNum = t.num, true
			case tokName:
				o.name = t.text
			case tokString:
				o.n = t.n
			case tokArray:
				o.n = t.n
			}
			ops = append(ops, o)
			continue
		}
		opStart := t.start
		if len(ops) > 0 {
			opStart = ops[0].start
		}
		switch t.text {
		case "q":
			stack = append(stack, ctm)
			tsStack = append(tsStack, ts)
		case "Q":
			if len(stack) > 0 {
				ctm, stack = stack[len(stack)-1], stack[:len(stack)-1]
				ts, tsStack = tsStack[len(tsStack)-1], tsStack[:len(tsStack)-1]
			}
		case "cm":
			if v, ok := nums(6); ok {
				ctm = matrix(v).mul(ctm)
			}
		case "BT":
			tm, tlm = identityMatrix, identityMatrix
		case "Tf":
			if v, ok := nums(1); ok {
				ts.size = math.Abs(v[0])
			}
		case "Tz":
			if v, ok := nums(1); ok {
				ts.hscale = math.Abs(v[0]) / 100
			}
		case "Ts":
			if v, ok := nums(1); ok {
				ts.rise = v[0]
			}
		case "TL":
			if v, ok := nums(1); ok {
				ts.leading = v[0]
			}
		case "Tm":
			if v, ok := nums(6); ok {
				tlm = matrix(v)
				tm = tlm
			}
		case "Td", "TD":
			if v, ok := nums(2); ok {
				if t.text == "TD" {
					ts.leading = -v[1]
				}
				nextLine(v[0], v[1])
			}
		case "T*":
			nextLine(0, -ts.leading)
		case "Tj", "TJ", "'", "\"":
			if t.text == "'" || t.text == "\"" {
				nextLine(0, -ts.leading)
			}
			n := 1
			if len(ops) > 0 {
				n = ops[len(ops)-1].n
			}
			if !show(n) {
				// Keep the line move of ' and " (the rest of the block is
				// positioned from it): replace the operator by T*.
				drop(opStart, t.end)
				if t.text == "'" || t.text == "\"" {
					if t.text == "\"" && len(ops) >= 3 {
						fmt.Fprintf(out, " %s Tw %s Tc", num(ops[0].num), num(ops[1].num))
					}
					out.WriteString(" T*")
				}
			}
		case "Do":
			if len(ops) == 0 || ops[len(ops)-1].name == "" {
				drop(opStart, t.end)
				break
			}
			name := ops[len(ops)-1].name
			if !f.do(name, ctm) {
				drop(opStart, t.end)
			}
		case "BI":
			end := tok.skipInlineImage()
			b := ctm.bounds(0, 0, 1, 1)
			if !overlaps(b, f.box) || (f.zone != nil && overlaps(b, *f.zone)) {
				drop(opStart, end)
			}
		}
		ops = ops[:0]
	}
	out.Write(content[emitted:])
	return out
}

// do decides about an XObject drawn with ctm, registering what the output
// draws under name; false drops the Do.
func (f *contentFilter) do(name string, ctm matrix) bool {
	o, ok := f.xobjects[name]
	if !ok {
		return false
	}
	ref, isRef := o.(types.IndirectRef)
	sd, _, err := f.m.xref.DereferenceStreamDict(o)
	if err != nil || sd == nil {
		return false
	}
	var b types.Rectangle
	subtype := sd.Dict.NameEntry("Subtype")
	switch {
	case subtype != nil && *subtype == "Image":
		b = ctm.bounds(0, 0, 1, 1)
	case subtype != nil && *subtype == "Form":
		fm := identityMatrix
		if a := sd.Dict.ArrayEntry("Matrix"); len(a) == 6 {
			for i, v := range a {
				fm[i] = toFloat(v)
			}
		}
		bb := f.box
		if a := sd.Dict.ArrayEntry("BBox"); len(a) == 4 {
			bb = *types.NewRectangle(toFloat(a[0]), toFloat(a[1]), toFloat(a[2]), toFloat(a[3]))
		}
		b = fm.mul(ctm).bounds(bb.LL.X, bb.LL.Y, bb.UR.X, bb.UR.Y)
	default:
		return false
	}
	if !overlaps(b, f.box) {
		return false
	}
	if f.zone == nil || !overlaps(b, *f.zone) {
		f.used[name] = o
		return true
	}
	if *subtype != "Image" || !isRef {
		return false // fail closed: a form or a direct image reaching into the zone
	}
	key := redactKey{obj: ref.ObjectNumber.Value(), zone: *f.zone, ctm: ctm}
	red, ok := f.m.redacted[key]
	if !ok {
		red, err = redactImage(f.m.xref, sd, ctm, *f.zone)
		if err != nil {
			red = nil // an image we cannot rewrite does not reach the output
		}
		f.m.redacted[key] = red
	}
	if red == nil {
		return false
	}
	f.used[name] = *red
	return true
}

func toFloat(o types.Object) float64 {
	switch v := o.(type) {
	case types.Integer:
		return float64(v)
	case types.Float:
		return float64(v)
	}
	return 0
}

// redactImage returns a new image object: sd with every pixel that ctm
// maps into zone painted white.
func redactImage(xref *model.XRefTable, sd *types.StreamDict, ctm matrix, zone types.Rectangle) (*types.IndirectRef, error) {
	w, h := sd.Dict.IntEntry("Width"), sd.Dict.IntEntry("Height")
	if w == nil || h == nil || *w <= 0 || *h <= 0 || *w > 20000 || *h > 20000 {
		return nil, fmt.Errorf("image size")
	}
	W, H := *w, *h
	inZone := func(col, row int) bool {
		x, y := ctm.apply((float64(col)+0.5)/float64(W), 1-(float64(row)+0.5)/float64(H))
		return x >= zone.LL.X && x <= zone.UR.X && y >= zone.LL.Y && y <= zone.UR.Y
	}
	if len(sd.FilterPipeline) == 1 && sd.FilterPipeline[0].Name == filter.DCT {
		return redactJPEG(xref, sd, inZone)
	}
	for _, fl := range sd.FilterPipeline {
		if fl.Name != filter.Flate && fl.Name != filter.LZW && fl.Name != filter.RunLength &&
			fl.Name != filter.ASCII85 && fl.Name != filter.ASCIIHex {
			return nil, fmt.Errorf("image filter %s", fl.Name)
		}
	}
	cp := *sd
	cp.Content = nil
	if err := cp.Decode(); err != nil {
		return nil, err
	}
	data := append([]byte(nil), cp.Content...)
	mask := false
	if b := sd.Dict.BooleanEntry("ImageMask"); b != nil && *b {
		mask = true
	}
	bpc := 1
	if v := sd.Dict.IntEntry("BitsPerComponent"); v != nil {
		bpc = *v
	}
	comps, white, err := whiteOf(xref, sd.Dict, mask)
	if err != nil {
		return nil, err
	}
	if d := sd.Dict.ArrayEntry("Decode"); len(d) >= 2 && toFloat(d[0]) > toFloat(d[1]) {
		for i := range white {
			white[i] = 255 - white[i]
		}
	}
	switch bpc {
	case 8:
		stride := W * comps
		if len(data) < stride*H {
			return nil, fmt.Errorf("short image data")
		}
		for row := range H {
			for col := range W {
				if inZone(col, row) {
					copy(data[row*stride+col*comps:], white)
				}
			}
		}
	case 1:
		if comps != 1 {
			return nil, fmt.Errorf("1-bit image with %d components", comps)
		}
		stride := (W + 7) / 8
		if len(data) < stride*H {
			return nil, fmt.Errorf("short image data")
		}
		for row := range H {
			for col := range W {
				if inZone(col, row) {
					bit := byte(0x80 >> (col % 8))
					if white[0] != 0 {
						data[row*stride+col/8] |= bit
					} else {
						data[row*stride+col/8] &^= bit
					}
				}
			}
		}
	default:
		return nil, fmt.Errorf("%d bits per component", bpc)
	}
	d := types.Dict{}
	for k, v := range sd.Dict {
		switch k {
		case "Filter", "DecodeParms", "Length", "DL":
			continue
		}
		d[k] = v
	}
	out := types.StreamDict{Dict: d, Content: data,
		FilterPipeline: []types.PDFFilter{{Name: filter.Flate}}}
	out.InsertName("Filter", filter.Flate)
	if err := out.Encode(); err != nil {
		return nil, err
	}
	return xref.IndRefForNewObject(out)
}

// whiteOf is the sample value of white per component (before any /Decode
// inversion) and the number of components.
func whiteOf(xref *model.XRefTable, d types.Dict, imageMask bool) (int, []byte, error) {
	if imageMask {
		return 1, []byte{255}, nil // sample 1 = leave unpainted
	}
	o, ok := d.Find("ColorSpace")
	if !ok {
		return 0, nil, fmt.Errorf("no colour space")
	}
	o, err := xref.Dereference(o)
	if err != nil {
		return 0, nil, err
	}
	name := ""
	n := 0
	switch cs := o.(type) {
	case types.Name:
		name = string(cs)
	case types.Array:
		if len(cs) == 2 {
			if nm, ok := cs[0].(types.Name); ok && nm == "ICCBased" {
				icc, _, err := xref.DereferenceStreamDict(cs[1])
				if err != nil || icc == nil {
					return 0, nil, fmt.Errorf("ICC profile")
				}
				if v := icc.Dict.IntEntry("N"); v != nil {
					n = *v
					name = "ICCBased"
				}
			}
		}
	}
	switch {
	case name == "DeviceGray" || (name == "ICCBased" && n == 1):
		return 1, []byte{255}, nil
	case name == "DeviceRGB" || (name == "ICCBased" && n == 3):
		return 3, []byte{255, 255, 255}, nil
	case name == "DeviceCMYK" || (name == "ICCBased" && n == 4):
		return 4, []byte{0, 0, 0, 0}, nil
	}
	return 0, nil, fmt.Errorf("colour space %v", o)
}

// redactJPEG repaints a JPEG image (grey or colour) and encodes it again.
func redactJPEG(xref *model.XRefTable, sd *types.StreamDict, inZone func(col, row int) bool) (*types.IndirectRef, error) {
	img, err := jpeg.Decode(bytes.NewReader(sd.Raw))
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	var out image.Image
	switch src := img.(type) {
	case *image.Gray:
		g := image.NewGray(b)
		copy(g.Pix, src.Pix)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if inZone(x-b.Min.X, y-b.Min.Y) {
					g.Pix[g.PixOffset(x, y)] = 255
				}
			}
		}
		out = g
	case *image.YCbCr:
		rgba := image.NewRGBA(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if inZone(x-b.Min.X, y-b.Min.Y) {
					rgba.Set(x, y, image.White.C)
				} else {
					rgba.Set(x, y, src.At(x, y))
				}
			}
		}
		out = rgba
	default:
		return nil, fmt.Errorf("JPEG colour model %T", img)
	}
	if b.Dx() != intOr(sd.Dict.IntEntry("Width")) || b.Dy() != intOr(sd.Dict.IntEntry("Height")) {
		return nil, fmt.Errorf("JPEG size differs from the image dictionary")
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, out, &jpeg.Options{Quality: 90}); err != nil {
		return nil, err
	}
	d := types.Dict{}
	for k, v := range sd.Dict {
		switch k {
		case "Filter", "DecodeParms", "Length", "Decode":
			continue
		}
		d[k] = v
	}
	if _, isGray := out.(*image.Gray); isGray {
		d["ColorSpace"] = types.Name("DeviceGray")
	} else {
		d["ColorSpace"] = types.Name("DeviceRGB")
	}
	d["BitsPerComponent"] = types.Integer(8)
	d["Filter"] = types.Name(filter.DCT)
	n := int64(buf.Len())
	d["Length"] = types.Integer(n)
	s := types.StreamDict{Dict: d, Raw: buf.Bytes(), StreamLength: &n,
		FilterPipeline: []types.PDFFilter{{Name: filter.DCT}}}
	return xref.IndRefForNewObject(s)
}

func intOr(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}
