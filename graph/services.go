package graph

// Services are the domain services the resolvers call.
type Services struct{}
