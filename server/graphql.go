package server

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/graph"
	"github.com/korrigo/korrigo/graph/generated"
	"github.com/korrigo/korrigo/server/httpctx"
)

// Query limits of DESIGN.md §11.
const (
	MaxComplexity = 5000
	MaxQueryBytes = 15000
)

// NewGraphQLHandler builds the gqlgen server with explicit transports (never the
// deprecated NewDefaultServer).
func NewGraphQLHandler(services graph.Services, log *zap.Logger, production bool) *handler.Server {
	return newGraphQLHandler(services, log, production, nil)
}

// newGraphQLHandler is NewGraphQLHandler reporting internal errors and panics
// to rep (Sentry; nil: none).
func newGraphQLHandler(services graph.Services, log *zap.Logger, production bool, rep *reporter) *handler.Server {
	es := generated.NewExecutableSchema(generated.Config{Resolvers: &graph.Resolver{Services: services}})
	srv := handler.New(es)
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{}) // queries only: gqlgen refuses mutations over GET
	srv.AddTransport(transport.POST{})
	srv.AddTransport(uploadTransport()) // behind guardUploads (CSRF, size)
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.SetParserTokenLimit(MaxQueryBytes / 2) // parsing stops early on giant documents
	srv.Use(extension.Introspection{})
	srv.Use(queryLimitsExt{limits: DefaultQueryLimits, es: es}) // depth, aliases, complexity, length, page size
	srv.SetDisableSuggestion(production)
	present := errorPresenter(log, rep)
	srv.SetErrorPresenter(present)
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		log.Error("resolver panic", zap.Any("panic", p), zap.String("request_id", httpctx.RequestID(ctx)),
			zap.ByteString("stack", debug.Stack()))
		rep.panicked(ctx, p)
		// Masked as INTERNAL_SERVER_ERROR by the presenter, not reported again.
		return fmt.Errorf("panic: %v (%w)", p, errReported)
	})
	srv.AroundResponses(normalizeCodes)
	srv.AroundRootFields(requirePasswordChange)
	srv.AroundOperations(requirePasswordChangeToSubscribe(present)) // root-field middleware skips subscriptions
	srv.AroundOperations(graph.ReadCache)                           // a page's grades in a fixed number of statements
	return srv
}
