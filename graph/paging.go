package graph

import (
	"context"
	"errors"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/privacy"
	"github.com/korrigo/korrigo/ids"
)

// Page sizes of Relay connections (DESIGN.md §11).
const (
	maxPageSize     = 100
	defaultPageSize = 50
)

// checkPage bounds first/last and applies the default page size, so a client that
// asks for no size does not read a whole table.
func checkPage(first **int, last *int) error {
	for name, v := range map[string]*int{"first": *first, "last": last} {
		if v != nil && (*v < 0 || *v > maxPageSize) {
			return apperr.BadField(name, "%s must be between 0 and %d", name, maxPageSize)
		}
	}
	if *first == nil && last == nil {
		n := defaultPageSize
		*first = &n
	}
	return nil
}

// node resolves any id through the privacy rules: an object the caller may not
// read is indistinguishable from one that does not exist.
func (r *Resolver) node(ctx context.Context, id string) (ent.Noder, error) {
	if _, err := ids.Table(id); err != nil {
		return nil, apperr.NotFoundf("no object with id %q", id)
	}
	n, err := r.Client.Noder(ctx, id, ent.WithNodeType(func(_ context.Context, id string) (string, error) {
		return ids.Table(id)
	}))
	if err != nil {
		return nil, hideDenied(err, id)
	}
	return n, nil
}

func (r *Resolver) nodes(ctx context.Context, list []string) ([]ent.Noder, error) {
	if len(list) > maxPageSize {
		return nil, apperr.BadField("ids", "at most %d ids", maxPageSize)
	}
	out := make([]ent.Noder, len(list))
	for i, id := range list {
		n, err := r.node(ctx, id)
		if err != nil && !apperr.HasCode(err, apperr.NotFound) {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// hideDenied maps "not found" and "denied by privacy" to the same NOT_FOUND.
func hideDenied(err error, id string) error {
	var nf *ent.NotFoundError
	if errors.As(err, &nf) || isDenied(err) {
		return apperr.NotFoundf("no object with id %q", id)
	}
	return err
}

func isDenied(err error) bool { return errors.Is(err, privacy.Deny) }
