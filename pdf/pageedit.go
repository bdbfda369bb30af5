package pdf

import (
	"fmt"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// Helpers to draw on pages of a document Korrigo built itself.

// ownResources returns a resource dictionary that belongs to page alone,
// copying an inherited or shared one first: adding our font to a dictionary
// other pages use would be harmless, but changing a shared object in place
// is a trap for whoever edits this next.
func ownResources(xref *model.XRefTable, page types.Dict) (types.Dict, error) {
	own := types.Dict{}
	if o, ok := page.Find("Resources"); ok {
		d, err := xref.DereferenceDict(o)
		if err != nil {
			return nil, fmt.Errorf("resources: %w", err)
		}
		for k, v := range d {
			own[k] = v
		}
	}
	page["Resources"] = own
	return own, nil
}

// addResource registers obj in res under category with a name no existing
// entry uses, and returns that name.
func addResource(xref *model.XRefTable, res types.Dict, category, prefix string, obj types.Object) (string, error) {
	sub := types.Dict{}
	if o, ok := res.Find(category); ok {
		d, err := xref.DereferenceDict(o)
		if err != nil {
			return "", fmt.Errorf("resources /%s: %w", category, err)
		}
		for k, v := range d {
			sub[k] = v
		}
	}
	name := prefix
	for i := 1; sub[name] != nil; i++ {
		name = fmt.Sprintf("%s%d", prefix, i)
	}
	sub[name] = obj
	res[category] = sub
	return name, nil
}

func newAlphaState(xref *model.XRefTable, alpha float64) (*types.IndirectRef, error) {
	return xref.IndRefForNewObject(types.Dict{
		"Type": types.Name("ExtGState"),
		"ca":   types.Float(alpha),
		"CA":   types.Float(alpha),
	})
}

// wrapContents surrounds the page's content streams with before and after.
func wrapContents(xref *model.XRefTable, page types.Dict, before, after []byte) error {
	var streams types.Array
	if o, ok := page.Find("Contents"); ok {
		o, err := xref.Dereference(o)
		if err != nil {
			return fmt.Errorf("contents: %w", err)
		}
		if arr, isArr := o.(types.Array); isArr {
			streams = append(streams, arr...)
		} else {
			streams = append(streams, page["Contents"])
		}
	}
	pre, err := newContentStream(xref, before)
	if err != nil {
		return err
	}
	post, err := newContentStream(xref, after)
	if err != nil {
		return err
	}
	page["Contents"] = append(append(types.Array{*pre}, streams...), *post)
	return nil
}

func newContentStream(xref *model.XRefTable, content []byte) (*types.IndirectRef, error) {
	sd, err := xref.NewStreamDictForBuf(content)
	if err != nil {
		return nil, fmt.Errorf("content stream: %w", err)
	}
	if err := sd.Encode(); err != nil {
		return nil, fmt.Errorf("content stream: %w", err)
	}
	return xref.IndRefForNewObject(*sd)
}
