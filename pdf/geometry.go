package pdf

import (
	"math"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// landscapeRatio is the width/height above which a displayed page is taken
// for an A3 sheet scanned landscape (A3 is 1.41, A4 portrait 0.71). The
// margin tolerates scanners that trim or pad a few millimetres.
const landscapeRatio = 1.2

// pageGeom describes where a page appears on screen: the visible rectangle
// in the page's own user space and the quarter turn a viewer applies.
// Everything Korrigo places on a page (cut lines, marks) is expressed in
// "display" coordinates (origin at the bottom-left of the page as the reader
// sees it, x to the right, y up) and mapped back through matrix, so rotated
// scans come out right without special cases at each call site.
type pageGeom struct {
	box    types.Rectangle // visible area: CropBox clipped to MediaBox
	rotate int             // 0, 90, 180 or 270, clockwise like /Rotate
}

func geomFromBoundaries(pb model.PageBoundaries) pageGeom {
	media := normRect(pb.MediaBox())
	box := media
	if pb.Crop != nil && pb.Crop.Rect != nil {
		box = intersect(media, normRect(pb.Crop.Rect))
	}
	return pageGeom{box: box, rotate: normRotate(pb.Rot)}
}

// normRect orders the corners: PDF allows any two opposite corners and
// some producers write the upper-right one first.
func normRect(r *types.Rectangle) types.Rectangle {
	if r == nil {
		// The MediaBox is required and inheritable; pdfcpu's validation
		// rejects pages without one, so this is a last-resort default.
		return *types.RectForFormat("A4")
	}
	return types.Rectangle{
		LL: types.Point{X: math.Min(r.LL.X, r.UR.X), Y: math.Min(r.LL.Y, r.UR.Y)},
		UR: types.Point{X: math.Max(r.LL.X, r.UR.X), Y: math.Max(r.LL.Y, r.UR.Y)},
	}
}

func intersect(a, b types.Rectangle) types.Rectangle {
	r := types.Rectangle{
		LL: types.Point{X: math.Max(a.LL.X, b.LL.X), Y: math.Max(a.LL.Y, b.LL.Y)},
		UR: types.Point{X: math.Min(a.UR.X, b.UR.X), Y: math.Min(a.UR.Y, b.UR.Y)},
	}
	if r.Width() <= 0 || r.Height() <= 0 {
		// A CropBox outside the MediaBox is meaningless; viewers fall back
		// to the MediaBox and so do we.
		return a
	}
	return r
}

func normRotate(rot int) int {
	rot %= 360
	if rot < 0 {
		rot += 360
	}
	// /Rotate must be a multiple of 90; round anything else like viewers do.
	return (rot + 45) / 90 * 90 % 360
}

// displaySize is the page size as the reader sees it.
func (g pageGeom) displaySize() (w, h float64) {
	if g.rotate == 90 || g.rotate == 270 {
		return g.box.Height(), g.box.Width()
	}
	return g.box.Width(), g.box.Height()
}

func (g pageGeom) landscape() bool {
	w, h := g.displaySize()
	return h > 0 && w/h > landscapeRatio
}

// matrix maps display coordinates to user space, as a PDF "cm" operand
// [a b c d e f] (x' = a·x + c·y + e, y' = b·x + d·y + f).
func (g pageGeom) matrix() [6]float64 {
	x0, y0 := g.box.LL.X, g.box.LL.Y
	w, h := g.box.Width(), g.box.Height()
	switch g.rotate {
	case 90: // shown turned clockwise: display x runs up the user y axis
		return [6]float64{0, 1, -1, 0, x0 + w, y0}
	case 180:
		return [6]float64{-1, 0, 0, -1, x0 + w, y0 + h}
	case 270:
		return [6]float64{0, -1, 1, 0, x0, y0 + h}
	}
	return [6]float64{1, 0, 0, 1, x0, y0}
}

func (g pageGeom) toUser(x, y float64) (float64, float64) {
	m := g.matrix()
	return m[0]*x + m[2]*y + m[4], m[1]*x + m[3]*y + m[5]
}

// userRect maps a rectangle given in display coordinates to user space.
func (g pageGeom) userRect(x0, y0, x1, y1 float64) types.Rectangle {
	ax, ay := g.toUser(x0, y0)
	bx, by := g.toUser(x1, y1)
	return normRect(types.NewRectangle(ax, ay, bx, by))
}

// halves returns the left and right halves of the page as the reader sees
// it, in user space, ready to become MediaBoxes.
func (g pageGeom) halves() (left, right types.Rectangle) {
	w, h := g.displaySize()
	return g.userRect(0, 0, w/2, h), g.userRect(w/2, 0, w, h)
}
