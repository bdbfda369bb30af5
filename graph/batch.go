package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/grading"
)

// ReadCache is an operation middleware (server: AroundOperations): each query
// gets a cache of the score sheets it reads, so the grades of a page of copies
// cost a fixed number of statements (see grading.Batch). Mutations and
// subscriptions get none: what they read may change between their fields or
// events.
func ReadCache(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if oc := graphql.GetOperationContext(ctx); oc != nil && oc.Operation != nil && oc.Operation.Operation == ast.Query {
		ctx = grading.WithReadCache(ctx)
	}
	return next(ctx)
}

// batchDepth is how far up copyBatch looks for the list: from a field of a Copy
// to the connection's edges is three steps (the edge's node field, the list
// element, the edges field); from a plain list of copies, two.
const batchDepth = 3

// copyBatch returns the copies of the GraphQL list the copy being resolved
// belongs to (a connection's edges, nodes(ids), any [Copy] field): gqlgen keeps
// each resolved field's value in its field context, set before the list's
// elements are resolved. Every copy there was read through the read rules by
// the resolver that produced the list.
func copyBatch(ctx context.Context) grading.Batch {
	return func() []*ent.ExamCopy {
		fc := graphql.GetFieldContext(ctx)
		for i := 0; fc != nil && i <= batchDepth; i, fc = i+1, fc.Parent {
			switch list := fc.Result.(type) {
			case []*ent.ExamCopy:
				return list
			case []*ent.CopyEdge:
				out := make([]*ent.ExamCopy, 0, len(list))
				for _, e := range list {
					if e != nil && e.Node != nil {
						out = append(out, e.Node)
					}
				}
				return out
			case []ent.Noder:
				var out []*ent.ExamCopy
				for _, n := range list {
					if c, ok := n.(*ent.ExamCopy); ok && c != nil {
						out = append(out, c)
					}
				}
				return out
			}
		}
		return nil
	}
}
