package pdf

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
)

// rgb is a DeviceRGB colour.
type rgb [3]float64

// canvas accumulates content-stream operators. Coordinates are in points.
type canvas struct {
	buf  bytes.Buffer
	font *textFont
	res  string // resource name the font is registered under on this page
}

// num formats a coordinate; a thousandth of a point is far below what any
// device resolves and keeps the streams short.
func num(f float64) string { return strconv.FormatFloat(math.Round(f*1000)/1000, 'f', -1, 64) }

func (c *canvas) op(format string, args ...any) { fmt.Fprintf(&c.buf, format+"\n", args...) }

func (c *canvas) fillColor(col rgb) { c.op("%s %s %s rg", num(col[0]), num(col[1]), num(col[2])) }

func (c *canvas) strokeColor(col rgb) { c.op("%s %s %s RG", num(col[0]), num(col[1]), num(col[2])) }

func (c *canvas) fillRect(x, y, w, h float64) {
	c.op("%s %s %s %s re f", num(x), num(y), num(w), num(h))
}

func (c *canvas) strokeRect(x, y, w, h, lineWidth float64) {
	c.op("%s w %s %s %s %s re S", num(lineWidth), num(x), num(y), num(w), num(h))
}

func (c *canvas) line(x0, y0, x1, y1, lineWidth float64) {
	c.op("%s w %s %s m %s %s l S", num(lineWidth), num(x0), num(y0), num(x1), num(y1))
}

// text draws s with its baseline starting at (x, y).
func (c *canvas) text(x, y, size float64, s string) {
	c.op("BT /%s %s Tf 1 0 0 1 %s %s Tm %s Tj ET", c.res, num(size), num(x), num(y), c.font.encode(s))
}

// textRight draws s so that it ends at x.
func (c *canvas) textRight(x, y, size float64, s string) {
	c.text(x-c.font.width(s, size), y, size, s)
}
