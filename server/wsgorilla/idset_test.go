package wsgorilla

import (
	"fmt"
	"testing"
)

// idSet behaves as a set whatever the order of adds and removes, across the
// inline first slot and the map (the empty id included).
func TestIDSetIsASet(t *testing.T) {
	var s idSet
	model := map[string]bool{}
	ops := []struct {
		add bool
		id  string
	}{
		{true, "1"}, {true, "2"}, {true, ""}, {false, "1"}, {true, "3"}, {true, "1"},
		{false, "2"}, {false, "2"}, {false, ""}, {false, "1"}, {false, "3"}, {true, "4"},
	}
	for i, op := range ops {
		if op.add {
			if s.has(op.id) != model[op.id] || model[op.id] {
				t.Fatalf("step %d: add %q: has=%v, model %v", i, op.id, s.has(op.id), model)
			}
			s.add(op.id)
			model[op.id] = true
		} else if got := s.remove(op.id); got != model[op.id] {
			t.Fatalf("step %d: remove %q reported %v, want %v", i, op.id, got, model[op.id])
		} else {
			delete(model, op.id)
		}
		for _, id := range []string{"", "1", "2", "3", "4"} {
			if s.has(id) != model[id] {
				t.Fatalf("step %d: has(%q)=%v, want %v (set %+v)", i, id, s.has(id), model[id], s)
			}
		}
	}
	if s.more == nil || len(s.more) != 0 || s.hasFirst != true || s.first != "4" {
		t.Fatalf("end state %s: the first free slot is reused before the map", fmt.Sprintf("%+v", s))
	}
}
