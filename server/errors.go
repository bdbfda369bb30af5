package server

import (
	"context"
	"errors"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/privacy"
	"github.com/korrigo/korrigo/server/httpctx"
)

// classify maps any error a resolver returns to the API's typed error. Errors that
// are not typed become INTERNAL_SERVER_ERROR and are logged: their text (SQL, file
// paths, stack) never reaches the client.
func classify(ctx context.Context, err error) (*apperr.Error, bool) {
	var typed *apperr.Error
	var validation *ent.ValidationError
	switch {
	case errors.As(err, &typed):
		return typed, true
	case ent.IsNotFound(err):
		return apperr.NotFoundf("not found"), true
	case errors.As(err, &validation):
		// ent's validation messages name the field and the rule, nothing else.
		return apperr.BadField(validation.Name, "%s", strings.TrimPrefix(validation.Error(), "ent: ")), true
	case errors.Is(err, privacy.Deny):
		if viewer.FromContext(ctx) == nil {
			return apperr.Unauthenticatedf("sign in first"), true
		}
		return apperr.Forbiddenf("you may not read this"), true
	case errors.Is(err, context.Canceled):
		return apperr.New(apperr.InternalError, "request cancelled"), true
	}
	return nil, false
}

// errorPresenter renders typed errors with extensions.code and masks the rest.
func errorPresenter(log *zap.Logger, rep *reporter) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		typed, ok := classify(ctx, err)
		switch {
		case ok:
		case gqlErr.Extensions["code"] != nil:
			return gqlErr // gqlgen's own typed errors, renamed by normalizeCodes
		case argumentError(ctx, gqlErr):
			typed, ok = apperr.BadInputf("%s", gqlErr.Message), true
		}
		if !ok {
			reqID := httpctx.RequestID(ctx)
			log.Error("internal error", zap.Error(err), zap.String("request_id", reqID),
				zap.Stringer("path", gqlErr.Path))
			rep.internal(ctx, err)
			gqlErr.Message = "internal server error"
			gqlErr.Extensions = map[string]any{"code": string(apperr.InternalError), "requestId": reqID}
			return gqlErr
		}
		if retry, ok := typed.Extensions["retryAfter"].(int); ok && typed.Code == apperr.RateLimited {
			markLimited(ctx, int64(retry))
		}
		gqlErr.Message = typed.Message
		ext := map[string]any{"code": string(typed.Code)}
		for k, v := range typed.Extensions {
			ext[k] = v
		}
		gqlErr.Extensions = ext
		return gqlErr
	}
}

// contractCodes renames gqlgen's own codes to the contract's (DESIGN.md §11).
var contractCodes = map[string]apperr.Code{
	"GRAPHQL_PARSE_FAILED":      apperr.BadUserInput,
	"GRAPHQL_VALIDATION_FAILED": apperr.BadUserInput,
	"COMPLEXITY_LIMIT_EXCEEDED": apperr.QueryTooComplex,
	"PERSISTED_QUERY_NOT_FOUND": apperr.BadUserInput,
}

// normalizeCodes is a response middleware: every error leaves with a contract code.
func normalizeCodes(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil {
		return resp
	}
	for _, e := range resp.Errors {
		code, _ := e.Extensions["code"].(string)
		if mapped, ok := contractCodes[code]; ok {
			e.Extensions["code"] = string(mapped)
			e.Extensions["reason"] = code
		} else if code == "" {
			if e.Extensions == nil {
				e.Extensions = map[string]any{}
			}
			e.Extensions["code"] = string(apperr.BadUserInput)
		}
	}
	return resp
}

// argumentError tells gqlgen's argument coercion errors (a malformed cursor, Time
// or Int) from resolver errors: gqlgen reports them before entering the field, so
// the context's field is not the one on the error's path.
func argumentError(ctx context.Context, e *gqlerror.Error) bool {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return true
	}
	return fc.Path().String() != e.Path.String()
}
