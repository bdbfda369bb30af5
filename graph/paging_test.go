package graph_test

import (
	"testing"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/server/servertest"
)

// pageInfo comes from the page itself (one row fetched beyond it), not from a
// COUNT of the whole filtered set: that count runs only for totalCount, or
// for pageInfo without edges. Paging 12 copies by 5 still sees each once and
// hasNextPage right.
func TestPageInfoWithoutCount(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.As(env.Admin())
		ex := env.NewExam()
		for range 12 {
			env.NewCopy(ex, servertest.CopyOpts{})
		}
		type page struct {
			Copies struct {
				TotalCount int
				PageInfo   struct {
					HasNextPage bool
					EndCursor   *string
				}
				Edges []struct{ Node struct{ ID string } }
			}
		}
		run := func(q string, after *string) (page, int64) {
			t.Helper()
			var p page
			n := env.Statements.Steady(func() {
				p = page{}
				admin.MustDo(q, map[string]any{"e": ex.ID, "after": after}, &p)
			})
			return p, n
		}
		const (
			edges    = `query($e: ID!, $after: Cursor){ copies(first: 5, after: $after, where: {hasExamWith: [{id: $e}]}) { edges { node { id } } } }`
			pageInfo = `query($e: ID!, $after: Cursor){ copies(first: 5, after: $after, where: {hasExamWith: [{id: $e}]}) { pageInfo { hasNextPage endCursor } edges { node { id } } } }`
			total    = `query($e: ID!, $after: Cursor){ copies(first: 5, after: $after, where: {hasExamWith: [{id: $e}]}) { totalCount edges { node { id } } } }`
			noEdges  = `query($e: ID!, $after: Cursor){ copies(first: 5, after: $after, where: {hasExamWith: [{id: $e}]}) { pageInfo { hasNextPage } } }`
		)
		_, base := run(edges, nil)
		if _, n := run(pageInfo, nil); n != base {
			t.Fatalf("pageInfo ran %d statements, edges alone %d: it counted", n, base)
		}
		if p, n := run(total, nil); n != base+1 || p.Copies.TotalCount != 12 {
			t.Fatalf("totalCount = %d in %d statements, want 12 in %d", p.Copies.TotalCount, n, base+1)
		}
		if p, _ := run(noEdges, nil); !p.Copies.PageInfo.HasNextPage {
			t.Fatal("pageInfo without edges: hasNextPage false with 12 copies")
		}

		seen := map[string]bool{}
		var after *string
		var more []bool
		for range 4 {
			p, _ := run(pageInfo, after)
			for _, e := range p.Copies.Edges {
				if seen[e.Node.ID] {
					t.Fatalf("copy %s paged twice", e.Node.ID)
				}
				seen[e.Node.ID] = true
			}
			more = append(more, p.Copies.PageInfo.HasNextPage)
			if !p.Copies.PageInfo.HasNextPage {
				break
			}
			after = p.Copies.PageInfo.EndCursor
		}
		if len(seen) != 12 || len(more) != 3 || !more[0] || !more[1] || more[2] {
			t.Fatalf("paged %d copies, hasNextPage %v; want 12 and [true true false]", len(seen), more)
		}
	})
}
