package pdftest

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// Ink counts the dark pixels (below mid-grey) of the 8-bit grey or RGB
// images drawn on page i (0-based) of pdf, split by where they land on the
// page: inside zone (user space) or elsewhere on the page. Pixels drawn
// outside the MediaBox are not counted. It fails the test on an image it
// cannot decode, so a test cannot pass by not looking.
func Ink(t testing.TB, pdf []byte, i int, zone types.Rectangle) (inZone, elsewhere int) {
	t.Helper()
	pages := Scan(t, pdf)
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	ctx, err := api.ReadContext(bytes.NewReader(pdf), conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := api.ValidateContext(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, inh, err := ctx.PageDict(i+1, false)
	if err != nil {
		t.Fatal(err)
	}
	xo := inh.Resources.DictEntry("XObject")
	p := pages[i]
	for _, im := range p.Images {
		ref, ok := xo[im.Name]
		if !ok {
			t.Fatalf("page %d draws unknown XObject %s", i, im.Name)
		}
		sd, _, err := ctx.DereferenceStreamDict(ref)
		if err != nil || sd == nil {
			t.Fatalf("XObject %s: %v", im.Name, err)
		}
		if st := sd.Dict.NameEntry("Subtype"); st == nil || *st != "Image" {
			continue
		}
		gray := decodeGray(t, sd)
		b := gray.Bounds()
		m := matrix(im.CTM)
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				if gray.GrayAt(x, y).Y >= 128 {
					continue
				}
				ux, uy := m.apply((float64(x)+0.5)/float64(b.Dx()), 1-(float64(y)+0.5)/float64(b.Dy()))
				if ux < p.Media.LL.X || ux > p.Media.UR.X || uy < p.Media.LL.Y || uy > p.Media.UR.Y {
					continue
				}
				if ux >= zone.LL.X && ux <= zone.UR.X && uy >= zone.LL.Y && uy <= zone.UR.Y {
					inZone++
				} else {
					elsewhere++
				}
			}
		}
	}
	return inZone, elsewhere
}

func decodeGray(t testing.TB, sd *types.StreamDict) *image.Gray {
	t.Helper()
	w, h := *sd.Dict.IntEntry("Width"), *sd.Dict.IntEntry("Height")
	if len(sd.FilterPipeline) == 1 && sd.FilterPipeline[0].Name == "DCTDecode" {
		img, err := jpeg.Decode(bytes.NewReader(sd.Raw))
		if err != nil {
			t.Fatal(err)
		}
		g := image.NewGray(img.Bounds())
		for y := range h {
			for x := range w {
				g.Set(x, y, img.At(x, y))
			}
		}
		return g
	}
	if err := sd.Decode(); err != nil {
		t.Fatalf("decode image: %v", err)
	}
	cs := sd.Dict.NameEntry("ColorSpace")
	comps := 1
	if cs != nil && *cs == "DeviceRGB" {
		comps = 3
	} else if cs == nil || *cs != "DeviceGray" {
		t.Fatalf("image colour space %v: not handled by pdftest", sd.Dict["ColorSpace"])
	}
	if bpc := sd.Dict.IntEntry("BitsPerComponent"); bpc == nil || *bpc != 8 {
		t.Fatalf("image bits per component: not handled by pdftest")
	}
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			o := (y*w + x) * comps
			v := 0
			for c := range comps {
				v += int(sd.Content[o+c])
			}
			g.Pix[y*w+x] = byte(v / comps)
		}
	}
	return g
}
