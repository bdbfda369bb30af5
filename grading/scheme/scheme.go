// Package scheme is the marking scheme of an exam: a tree of questions whose leaves
// carry points. It has no dependency on storage so the ent schema can embed it.
package scheme

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Node is one question or group of questions. ID is stable across edits (labels and
// order may change, scores keep pointing at the same id).
type Node struct {
	ID       string   `json:"id"`
	Label    string   `json:"label"`
	Points   *float64 `json:"points,omitempty"`
	Children []Node   `json:"children,omitempty"`
}

// Scheme is the root list of nodes.
type Scheme []Node

// Limits that keep a scheme reasonable to render and to score.
const (
	MaxNodes  = 500
	MaxDepth  = 5
	MaxIDLen  = 64
	MaxLabel  = 200
	MaxPoints = 1000
)

// ValidationError names the offending node; the API maps it to BAD_USER_INPUT.
type ValidationError struct {
	Path    string
	Message string
}

func (e *ValidationError) Error() string {
	if e.Path == "" {
		return "scheme: " + e.Message
	}
	return fmt.Sprintf("scheme %s: %s", e.Path, e.Message)
}

// (Not named Validate: ent would run it on every exam write, refusing the empty
// scheme a new exam starts with.)
// Check checks unique non-empty ids, non-empty labels, leaves with positive
// points, groups without points of their own, and size limits.
func (s Scheme) Check() error {
	if len(s) == 0 {
		return &ValidationError{Message: "a scheme needs at least one question"}
	}
	seen := map[string]bool{}
	count := 0
	var walk func(nodes []Node, path string, depth int) error
	walk = func(nodes []Node, path string, depth int) error {
		if depth > MaxDepth {
			return &ValidationError{Path: path, Message: fmt.Sprintf("deeper than %d levels", MaxDepth)}
		}
		for i, n := range nodes {
			p := fmt.Sprintf("%s[%d]", path, i)
			count++
			if count > MaxNodes {
				return &ValidationError{Message: fmt.Sprintf("more than %d questions", MaxNodes)}
			}
			id := strings.TrimSpace(n.ID)
			switch {
			case id == "" || id != n.ID:
				return &ValidationError{Path: p, Message: "id must be non-empty and without surrounding spaces"}
			case len(id) > MaxIDLen:
				return &ValidationError{Path: p, Message: fmt.Sprintf("id longer than %d characters", MaxIDLen)}
			case seen[id]:
				return &ValidationError{Path: p, Message: fmt.Sprintf("duplicate id %q", id)}
			case strings.TrimSpace(n.Label) == "":
				return &ValidationError{Path: p, Message: "label must not be empty"}
			case len(n.Label) > MaxLabel:
				return &ValidationError{Path: p, Message: fmt.Sprintf("label longer than %d characters", MaxLabel)}
			}
			seen[id] = true
			if len(n.Children) > 0 {
				if n.Points != nil {
					return &ValidationError{Path: p, Message: "a group of questions carries no points of its own"}
				}
				if err := walk(n.Children, p+".children", depth+1); err != nil {
					return err
				}
				continue
			}
			if n.Points == nil || *n.Points <= 0 || *n.Points > MaxPoints || math.IsNaN(*n.Points) {
				return &ValidationError{Path: p, Message: fmt.Sprintf("question %q needs points in ]0, %d]", id, MaxPoints)}
			}
		}
		return nil
	}
	return walk(s, "", 1)
}

// Leaf is a scorable question with its full label path.
type Leaf struct {
	ID     string
	Label  string
	Points float64
}

// Leaves returns the scorable questions in document order.
func (s Scheme) Leaves() []Leaf {
	var out []Leaf
	var walk func(nodes []Node, prefix string)
	walk = func(nodes []Node, prefix string) {
		for _, n := range nodes {
			label := n.Label
			if prefix != "" {
				label = prefix + " › " + n.Label
			}
			if len(n.Children) > 0 {
				walk(n.Children, label)
				continue
			}
			if n.Points != nil {
				out = append(out, Leaf{ID: n.ID, Label: label, Points: *n.Points})
			}
		}
	}
	walk(s, "")
	return out
}

// Leaf finds a scorable question by id.
func (s Scheme) Leaf(id string) (Leaf, bool) {
	for _, l := range s.Leaves() {
		if l.ID == id {
			return l, true
		}
	}
	return Leaf{}, false
}

// Max is the sum of the leaves' points.
func (s Scheme) Max() float64 {
	total := 0.0
	for _, l := range s.Leaves() {
		total += l.Points
	}
	return total
}

// Grade20 converts a raw total to a grade on 20, rounded to the hundredth.
func Grade20(total, max float64) float64 {
	if max <= 0 {
		return 0
	}
	return math.Round(total/max*20*100) / 100
}

// ErrEmpty is returned when an operation needs a scheme and the exam has none.
var ErrEmpty = errors.New("the exam has no marking scheme")
