package server

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
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
	srv := handler.New(generated.NewExecutableSchema(generated.Config{Resolvers: &graph.Resolver{Services: services}}))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{}) // queries only: gqlgen refuses mutations over GET
	srv.AddTransport(transport.POST{})
	srv.AddTransport(uploadTransport()) // behind guardUploads (CSRF, size)
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.SetParserTokenLimit(MaxQueryBytes / 2) // parsing stops early on giant documents
	srv.Use(extension.Introspection{})
	srv.Use(extension.FixedComplexityLimit(MaxComplexity))
	srv.SetDisableSuggestion(production)
	srv.SetErrorPresenter(errorPresenter(log))
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		log.Error("resolver panic", zap.Any("panic", p), zap.String("request_id", httpctx.RequestID(ctx)),
			zap.ByteString("stack", debug.Stack()))
		return fmt.Errorf("panic: %v", p) // masked as INTERNAL_SERVER_ERROR by the presenter
	})
	srv.AroundResponses(normalizeCodes)
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		if oc := graphql.GetOperationContext(ctx); oc != nil && len(oc.RawQuery) > MaxQueryBytes {
			return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
				Message:    fmt.Sprintf("the query is %d characters long; the limit is %d", len(oc.RawQuery), MaxQueryBytes),
				Extensions: map[string]any{"code": string(apperr.QueryTooComplex), "limit": MaxQueryBytes, "value": len(oc.RawQuery)},
			}}})
		}
		return next(ctx)
	})
	return srv
}
