package scheme

import "testing"

func pts(v float64) *float64 { return &v }

func TestValidate(t *testing.T) {
	good := Scheme{
		{ID: "q1", Label: "Exercice 1", Children: []Node{{ID: "q1a", Label: "a", Points: pts(2)}, {ID: "q1b", Label: "b", Points: pts(3.5)}}},
		{ID: "q2", Label: "Exercice 2", Points: pts(4)},
	}
	if err := good.Check(); err != nil {
		t.Fatalf("valid scheme refused: %v", err)
	}
	if got := good.Max(); got != 9.5 {
		t.Fatalf("Max = %v, want 9.5", got)
	}
	if l, ok := good.Leaf("q1b"); !ok || l.Points != 3.5 || l.Label != "Exercice 1 › b" {
		t.Fatalf("Leaf(q1b) = %+v, %v", l, ok)
	}
	if _, ok := good.Leaf("q1"); ok {
		t.Fatal("a group is not a leaf")
	}
	bad := map[string]Scheme{
		"empty":         {},
		"duplicate id":  {{ID: "a", Label: "x", Points: pts(1)}, {ID: "a", Label: "y", Points: pts(1)}},
		"empty label":   {{ID: "a", Label: " ", Points: pts(1)}},
		"empty id":      {{ID: "", Label: "x", Points: pts(1)}},
		"zero points":   {{ID: "a", Label: "x", Points: pts(0)}},
		"no points":     {{ID: "a", Label: "x"}},
		"group points":  {{ID: "a", Label: "x", Points: pts(1), Children: []Node{{ID: "b", Label: "y", Points: pts(1)}}}},
		"negative leaf": {{ID: "a", Label: "x", Points: pts(-1)}},
	}
	for name, s := range bad {
		if err := s.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestGrade20(t *testing.T) {
	if g := Grade20(7, 9.5); g != 14.74 {
		t.Fatalf("Grade20 = %v", g)
	}
	if g := Grade20(3, 0); g != 0 {
		t.Fatalf("Grade20 with no max = %v", g)
	}
}
