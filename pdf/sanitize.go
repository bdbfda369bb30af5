package pdf

import (
	"errors"
	"fmt"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// Sanitize rebuilds a PDF from its pages' content only. The result has the
// same pages in the same order, each reduced to what a reader sees (its
// MediaBox becomes the visible box), and nothing else of the upload: no
// JavaScript, OpenAction or additional actions, embedded files, form fields,
// annotations, outlines, metadata or document info (which often carries the
// author's name).
func Sanitize(in []byte) ([]byte, error) {
	src, geoms, err := openBytes(in, 0)
	if err != nil {
		return nil, fmt.Errorf("sanitize: %w", err)
	}
	out, err := rebuild(src, wholePages(geoms))
	if err != nil {
		return nil, fmt.Errorf("sanitize: %w", err)
	}
	return out, nil
}

// maxCopyDepth bounds the recursion over the object graph: a hostile file
// can nest arrays or chain objects deep enough to overflow the stack.
const maxCopyDepth = 512

var errTooDeep = errors.New("object graph nested too deeply")

// copier copies objects from one document into another, keeping shared
// objects shared (an image used by both halves of an A3 scan is stored once).
type copier struct {
	src, dst *model.XRefTable
	done     map[int]types.IndirectRef // source object number → copy
	dropped  map[int]bool              // source objects refused by the filter
}

func newCopier(src, dst *model.XRefTable) *copier {
	return &copier{src: src, dst: dst, done: map[int]types.IndirectRef{}, dropped: map[int]bool{}}
}

func (c *copier) page(ps pageSource) (types.Dict, error) {
	d, _, inh, err := c.src.PageDict(ps.page, false)
	if err != nil {
		return nil, err
	}
	page := types.Dict{
		"Type":     types.Name("Page"),
		"MediaBox": ps.box.Array(),
	}
	if rot := normRotate(inh.Rotate); rot != 0 {
		page["Rotate"] = types.Integer(rot)
	}
	res := types.Dict{}
	if inh.Resources != nil {
		if res, err = c.resources(inh.Resources, 0); err != nil {
			return nil, fmt.Errorf("resources: %w", err)
		}
	}
	page["Resources"] = res
	for _, key := range []string{"Contents", "Group", "UserUnit"} {
		v, ok := d.Find(key)
		if !ok {
			continue
		}
		cv, err := c.copy(v, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if cv != nil {
			page[key] = cv
		}
	}
	return page, nil
}

// resourceKeys are the resource categories content streams draw with
// (ISO 32000-1 table 33); anything else in a resource dictionary is not
// needed to render the page.
var resourceKeys = map[string]bool{
	"ExtGState": true, "ColorSpace": true, "Pattern": true, "Shading": true,
	"XObject": true, "Font": true, "ProcSet": true, "Properties": true,
}

func (c *copier) resources(o types.Object, depth int) (types.Dict, error) {
	o, err := c.src.Dereference(o)
	if err != nil {
		return nil, err
	}
	d, ok := o.(types.Dict)
	if !ok {
		return types.Dict{}, nil
	}
	out := types.Dict{}
	for k, v := range d {
		if !resourceKeys[k] {
			continue
		}
		cv, err := c.copy(v, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if cv != nil {
			out[k] = cv
		}
	}
	return out, nil
}

// droppedKeys are entries that carry actions, interactivity or links back
// into the source document; none of them is needed to draw a page.
var droppedKeys = map[string]bool{
	"A": true, "AA": true, "OpenAction": true, "JS": true, "JavaScript": true,
	"Annots": true, "AcroForm": true, "EmbeddedFiles": true, "EF": true,
	"Names": true, "Dests": true, "Outlines": true, "URI": true, "Threads": true,
	"Parent": true, "P": true, "StructParent": true, "StructParents": true,
	"PieceInfo": true,
}

// droppedTypes are dictionaries that never belong to page content. Page
// tree nodes are among them: reaching one from a resource would drag every
// other student's pages along.
var droppedTypes = map[string]bool{
	"Annot": true, "Action": true, "Filespec": true, "EmbeddedFile": true,
	"Page": true, "Pages": true, "Catalog": true, "Sig": true,
	"StructTreeRoot": true, "StructElem": true, "Outlines": true,
}

// actionTypes are the /S values of action dictionaries (ISO 32000-1 12.6.4),
// caught even when the dictionary omits /Type /Action.
var actionTypes = map[string]bool{
	"GoTo": true, "GoToR": true, "GoToE": true, "Launch": true, "Thread": true,
	"URI": true, "Sound": true, "Movie": true, "Hide": true, "Named": true,
	"SubmitForm": true, "ResetForm": true, "ImportData": true, "JavaScript": true,
	"SetOCGState": true, "Rendition": true, "Trans": true, "GoTo3DView": true,
	"RichMediaExecute": true,
}

func unsafeDict(d types.Dict) bool {
	if t := d.NameEntry("Type"); t != nil && droppedTypes[*t] {
		return true
	}
	if s := d.NameEntry("S"); s != nil && actionTypes[*s] {
		return true
	}
	_, js := d.Find("JS")
	return js
}

// copy returns o as an object of the destination document, or nil when o
// is, or only refers to, something the filter refuses.
func (c *copier) copy(o types.Object, depth int) (types.Object, error) {
	if depth > maxCopyDepth {
		return nil, errTooDeep
	}
	switch o := o.(type) {
	case types.IndirectRef:
		return c.copyRef(o, depth)
	case types.Dict:
		if unsafeDict(o) {
			return nil, nil
		}
		return c.copyDict(o, depth)
	case types.StreamDict:
		if unsafeDict(o.Dict) {
			return nil, nil
		}
		return c.copyStream(o, depth)
	case types.Array:
		out := make(types.Array, len(o))
		for i, v := range o {
			cv, err := c.copy(v, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = cv // nil is written as null, keeping positions intact
		}
		return out, nil
	}
	// Numbers, names, strings and booleans are immutable values.
	return o, nil
}

func (c *copier) copyRef(ref types.IndirectRef, depth int) (types.Object, error) {
	nr := ref.ObjectNumber.Value()
	if r, ok := c.done[nr]; ok {
		return r, nil
	}
	if c.dropped[nr] {
		return nil, nil
	}
	o, err := c.src.Dereference(ref)
	if err != nil {
		return nil, fmt.Errorf("object %d: %w", nr, err)
	}
	switch v := o.(type) {
	case nil:
		c.dropped[nr] = true
		return nil, nil
	case types.Dict:
		if unsafeDict(v) {
			c.dropped[nr] = true
			return nil, nil
		}
	case types.StreamDict:
		if unsafeDict(v.Dict) {
			c.dropped[nr] = true
			return nil, nil
		}
	}
	// Reserve the number before descending so that reference cycles (a
	// form XObject naming itself in its resources) terminate.
	newNr, err := c.dst.InsertObject(nil)
	if err != nil {
		return nil, fmt.Errorf("object %d: %w", nr, err)
	}
	newRef := *types.NewIndirectRef(newNr, 0)
	c.done[nr] = newRef
	cv, err := c.copy(o, depth+1)
	if err != nil {
		return nil, fmt.Errorf("object %d: %w", nr, err)
	}
	c.dst.Table[newNr].Object = cv
	return newRef, nil
}

func (c *copier) copyDict(d types.Dict, depth int) (types.Dict, error) {
	out := types.Dict{}
	for k, v := range d {
		if droppedKeys[k] {
			continue
		}
		var cv types.Object
		var err error
		if k == "Resources" {
			// Form XObjects and Type 3 fonts carry their own resources.
			cv, err = c.resources(v, depth+1)
		} else {
			cv, err = c.copy(v, depth+1)
		}
		if err != nil {
			return nil, fmt.Errorf("/%s: %w", k, err)
		}
		if cv != nil {
			out[k] = cv
		}
	}
	return out, nil
}

func (c *copier) copyStream(sd types.StreamDict, depth int) (types.Object, error) {
	if sd.Raw == nil && sd.Content != nil {
		// Only a decoded form is at hand; encode it first, since that also
		// settles the /Filter entries copied below.
		if err := sd.Encode(); err != nil {
			return nil, fmt.Errorf("encode stream: %w", err)
		}
	}
	d, err := c.copyDict(sd.Dict, depth)
	if err != nil {
		return nil, err
	}
	out := types.StreamDict{
		Dict:           d,
		FilterPipeline: sd.FilterPipeline,
		Raw:            sd.Raw,
		IsPageContent:  sd.IsPageContent,
		CSComponents:   sd.CSComponents,
	}
	// The source's length may live in another object; the copy states it
	// directly, as the writer expects.
	n := int64(len(out.Raw))
	out.StreamLength = &n
	out.Dict["Length"] = types.Integer(n)
	return out, nil
}
