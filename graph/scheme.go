package graph

import "github.com/korrigo/korrigo/grading/scheme"

// schemeFromInput copies gqlgen's list of nodes into a scheme.
func schemeFromInput(nodes []*scheme.Node) scheme.Scheme {
	sc := make(scheme.Scheme, len(nodes))
	for i, n := range nodes {
		sc[i] = *n
	}
	return sc
}
