package pdf

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// testPage describes one page of a PDF built by buildPDF.
type testPage struct {
	x0, y0, w, h float64 // MediaBox origin and size
	rotate       int
	texts        []testText
	// hostile extras, for the sanitiser tests
	jsAnnot bool // a link annotation running JavaScript, plus page /AA
}

// testText is a line of Helvetica text drawn at (x, y) in user space.
type testText struct {
	x, y float64
	s    string
}

// testDoc adds document-level extras to buildPDF's output.
type testDoc struct {
	openActionJS bool // /OpenAction running JavaScript
	embeddedFile bool // an attachment in the /EmbeddedFiles name tree
	acroForm     bool // a text field, also listed in the page's /Annots
	namesJS      bool // document-level JavaScript in the /JavaScript name tree
	info         string
}

// buildPDF writes a small uncompressed PDF by hand so tests control every
// object (pdfcpu would normalise away some of what we want to feed it).
func buildPDF(t testing.TB, pages []testPage, docs ...testDoc) []byte {
	t.Helper()
	var doc testDoc
	if len(docs) > 0 {
		doc = docs[0]
	}
	w := &rawPDF{}
	catalog := w.reserve()
	pagesObj := w.reserve()
	font := w.add("<</Type/Font/Subtype/Type1/BaseFont/Helvetica/Encoding/WinAnsiEncoding>>")
	var field int
	if doc.acroForm {
		field = w.reserve()
	}
	kids := make([]string, len(pages))
	for i, p := range pages {
		var content strings.Builder
		for _, tx := range p.texts {
			fmt.Fprintf(&content, "BT /F1 10 Tf 1 0 0 1 %g %g Tm (%s) Tj ET\n", tx.x, tx.y, tx.s)
		}
		fmt.Fprintf(&content, "0 0 1 RG %g %g %g %g re S\n", p.x0+10, p.y0+10, p.w-20, p.h-20)
		c := w.addStream("", content.String())
		page := w.reserve()
		var extra strings.Builder
		var annots []string
		if p.jsAnnot {
			js := w.add("<</S/JavaScript/JS(app.alert\\('page'\\))>>")
			annots = append(annots, fmt.Sprintf("%d 0 R", w.add(fmt.Sprintf(
				"<</Type/Annot/Subtype/Link/Rect[%g %g %g %g]/Border[0 0 0]/A %d 0 R/P %d 0 R>>",
				p.x0+20, p.y0+20, p.x0+120, p.y0+60, js, page))))
			annots = append(annots, fmt.Sprintf("%d 0 R", w.add(fmt.Sprintf(
				"<</Type/Annot/Subtype/Text/Rect[%g %g %g %g]/Contents(secret note)/P %d 0 R>>",
				p.x0+20, p.y0+80, p.x0+40, p.y0+100, page))))
			extra.WriteString("/AA<</O<</S/JavaScript/JS(app.alert\\('open'\\))>>>>")
		}
		if doc.acroForm && i == 0 {
			annots = append(annots, fmt.Sprintf("%d 0 R", field))
		}
		if len(annots) > 0 {
			fmt.Fprintf(&extra, "/Annots[%s]", strings.Join(annots, " "))
		}
		if p.rotate != 0 {
			fmt.Fprintf(&extra, "/Rotate %d", p.rotate)
		}
		w.set(page, fmt.Sprintf("<</Type/Page/Parent %d 0 R/MediaBox[%g %g %g %g]/Resources<</Font<</F1 %d 0 R>>>>/Contents %d 0 R%s>>",
			pagesObj, p.x0, p.y0, p.x0+p.w, p.y0+p.h, font, c, extra.String()))
		kids[i] = fmt.Sprintf("%d 0 R", page)
	}
	w.set(pagesObj, fmt.Sprintf("<</Type/Pages/Count %d/Kids[%s]>>", len(pages), strings.Join(kids, " ")))

	var cat strings.Builder
	cat.WriteString(fmt.Sprintf("<</Type/Catalog/Pages %d 0 R", pagesObj))
	if doc.openActionJS {
		js := w.add("<</Type/Action/S/JavaScript/JS(app.alert\\('pwned'\\))>>")
		fmt.Fprintf(&cat, "/OpenAction %d 0 R/AA<</WC<</S/JavaScript/JS(app.alert\\('close'\\))>>>>", js)
	}
	var names []string
	if doc.embeddedFile {
		ef := w.addStream("/Type/EmbeddedFile", "MZ this would be an executable")
		spec := w.add(fmt.Sprintf("<</Type/Filespec/F(payload.exe)/UF(payload.exe)/EF<</F %d 0 R>>>>", ef))
		names = append(names, fmt.Sprintf("/EmbeddedFiles<</Names[(payload.exe) %d 0 R]>>", spec))
	}
	if doc.namesJS {
		js := w.add("<</S/JavaScript/JS(app.alert\\('doc'\\))>>")
		names = append(names, fmt.Sprintf("/JavaScript<</Names[(init) %d 0 R]>>", js))
	}
	if len(names) > 0 {
		fmt.Fprintf(&cat, "/Names<<%s>>", strings.Join(names, ""))
	}
	if doc.acroForm {
		w.set(field, fmt.Sprintf("<</Type/Annot/Subtype/Widget/FT/Tx/T(name)/V(Jean Dupont)/DA(/Helv 0 Tf 0 g)/Rect[50 50 200 70]/P %s/AA<</K<</S/JavaScript/JS(1)>>>>>>", kids[0]))
		fmt.Fprintf(&cat, "/AcroForm<</Fields[%d 0 R]>>", field)
	}
	cat.WriteString(">>")
	w.set(catalog, cat.String())
	var info int
	if doc.info != "" {
		info = w.add(fmt.Sprintf("<</Title(%s)/Author(%s)>>", doc.info, doc.info))
	}
	return w.bytes(catalog, info)
}

// rawPDF is a minimal PDF object writer with a classic xref table.
type rawPDF struct {
	objs []string
}

func (w *rawPDF) reserve() int {
	w.objs = append(w.objs, "")
	return len(w.objs)
}

func (w *rawPDF) set(n int, body string) { w.objs[n-1] = body }

func (w *rawPDF) add(body string) int {
	n := w.reserve()
	w.set(n, body)
	return n
}

func (w *rawPDF) addStream(dict, data string) int {
	return w.add(fmt.Sprintf("<<%s/Length %d>>\nstream\n%s\nendstream", dict, len(data), data))
}

func (w *rawPDF) bytes(root, info int) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(w.objs))
	for i, o := range w.objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(w.objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	infoRef := ""
	if info > 0 {
		infoRef = fmt.Sprintf("/Info %d 0 R", info)
	}
	fmt.Fprintf(&b, "trailer\n<</Size %d/Root %d 0 R%s>>\nstartxref\n%d\n%%%%EOF\n", len(w.objs)+1, root, infoRef, xref)
	return b.Bytes()
}

func validateBytes(in []byte, maxPages int) (Info, error) {
	return Validate(bytes.NewReader(in), int64(len(in)), maxPages)
}
