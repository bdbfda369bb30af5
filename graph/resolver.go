// Package graph holds the GraphQL resolvers: thin adapters that parse input, call a
// domain service and map the result. Business rules live in the services.
package graph

//go:generate sh -c "cd .. && go run ./tools/entc && go tool gqlgen generate"

// Resolver is the root resolver; it holds the domain services.
type Resolver struct {
	Services
}
