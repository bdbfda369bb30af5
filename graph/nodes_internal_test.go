package graph

import (
	"context"
	"testing"

	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ids"
)

// A database that fails is not a missing object: nodes(ids) fails as a whole,
// however its ids group by type, rather than answering null entries.
func TestNodesFailWhenTheDatabaseFails(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		r := &Resolver{Services{Client: d.Client}}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		ctx := rules.System(context.Background())
		cp, ex := ids.New(ids.Copy), ids.New(ids.Exam)
		for name, list := range map[string][]string{
			"one id": {cp}, "one type": {cp, ids.New(ids.Copy)}, "two types": {"garbage", cp, ex, cp},
		} {
			out, err := r.nodes(ctx, list)
			if err == nil || hidden(err) || unresolved(err) {
				t.Errorf("%s: nodes on a closed database = %v, %v; want the database's error", name, out, err)
			}
		}
	})
}
