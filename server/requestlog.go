package server

import (
	"context"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/server/httpctx"
)

// DefaultSlowRequest is the duration over which a request (HTTP) or an
// operation (over WebSocket) is logged as slow (DESIGN.md §12).
const DefaultSlowRequest = time.Second

// requestInfo collects what inner layers learn about a request (the caller,
// the GraphQL operation) for the access log line written by the outer layer.
type requestInfo struct {
	start     time.Time // when the request came in (a WebSocket's upgrade)
	mu        sync.Mutex
	userID    string
	operation string // the client's operation name, if any
	fields    string // root fields (schema names)
}

type requestInfoKey struct{}

func withRequestInfo(ctx context.Context, start time.Time) (context.Context, *requestInfo) {
	info := &requestInfo{start: start}
	return context.WithValue(ctx, requestInfoKey{}, info), info
}

func requestInfoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return info
}

// noteUser records the authenticated caller of the request of ctx.
func noteUser(ctx context.Context, userID string) {
	if info := requestInfoFrom(ctx); info != nil {
		info.mu.Lock()
		info.userID = userID
		info.mu.Unlock()
	}
}

func (i *requestInfo) logFields() []zap.Field {
	i.mu.Lock()
	defer i.mu.Unlock()
	var out []zap.Field
	if i.userID != "" {
		out = append(out, zap.String("user_id", i.userID))
	}
	if i.operation != "" {
		out = append(out, zap.String("operation", i.operation))
	}
	if i.fields != "" {
		out = append(out, zap.String("fields", i.fields))
	}
	return out
}

// operationLog is a GraphQL response middleware: it tells the access log
// which operation an HTTP request ran, and logs slow operations sent over a
// WebSocket (one HTTP request for the whole socket, so the access log cannot).
func operationLog(log *zap.Logger, slow time.Duration) graphql.ResponseMiddleware {
	slow = orDefault(slow, DefaultSlowRequest)
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		resp := next(ctx)
		if resp == nil || !graphql.HasOperationContext(ctx) {
			return resp // nil: the end of a stream
		}
		oc := graphql.GetOperationContext(ctx)
		websocket := overWebSocket(ctx)
		subscription := oc.Operation != nil && oc.Operation.Operation == ast.Subscription
		if websocket && (subscription || oc.Stats.OperationStart.IsZero()) {
			return resp // every event of a subscription passes here: nothing to log
		}
		fields, _ := operationLabel(oc)
		name := oc.OperationName
		if name == "" && oc.Operation != nil {
			name = oc.Operation.Name
		}
		if len(name) > 100 {
			name = name[:100]
		}
		if websocket {
			if d := time.Since(oc.Stats.OperationStart); d > slow {
				f := []zap.Field{zap.String("request_id", httpctx.RequestID(ctx)), zap.String("operation", name),
					zap.String("fields", fields), zap.Duration("duration", d), zap.String("transport", "websocket")}
				if v := viewer.FromContext(ctx); v != nil {
					f = append(f, zap.String("user_id", v.UserID))
				}
				log.Warn("slow operation", f...)
			}
			return resp
		}
		if info := requestInfoFrom(ctx); info != nil {
			info.mu.Lock()
			info.operation, info.fields = name, fields
			info.mu.Unlock()
		}
		return resp
	}
}
