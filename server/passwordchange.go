package server

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/viewer"
)

// allowedBeforePasswordChange are the root fields a session with a temporary
// password may use: read itself, replace the password, leave.
var allowedBeforePasswordChange = map[string]bool{
	"me": true, "changePassword": true, "logout": true,
	"__typename": true, "__schema": true, "__type": true,
}

// requirePasswordChange enforces the forced change of a temporary password
// (must_change_password) on every root field of queries and mutations, over
// HTTP and WebSocket alike (subscriptions: requirePasswordChangeToSubscribe),
// instead of in each service.
func requirePasswordChange(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	v := viewer.FromContext(ctx)
	fc := graphql.GetRootFieldContext(ctx)
	if v == nil || !v.MustChangePassword || fc == nil || allowedBeforePasswordChange[fc.Field.Name] {
		return next(ctx)
	}
	graphql.AddError(ctx, apperr.PasswordChangeRequired())
	return graphql.Null
}

// requirePasswordChangeToSubscribe applies the same rule to subscriptions:
// gqlgen's generated subscription executor never runs root-field middleware,
// so without it a temporary password could open copyLockChanged and the other
// streams. The operation ends with the error before any resolver runs.
func requirePasswordChangeToSubscribe(present graphql.ErrorPresenterFunc) graphql.OperationMiddleware {
	return func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		v := viewer.FromContext(ctx)
		oc := graphql.GetOperationContext(ctx)
		if v == nil || !v.MustChangePassword || oc == nil || oc.Operation == nil ||
			oc.Operation.Operation != ast.Subscription {
			return next(ctx)
		}
		for _, sel := range oc.Operation.SelectionSet {
			if f, ok := sel.(*ast.Field); !ok || !allowedBeforePasswordChange[f.Name] {
				rctx := graphql.WithResponseContext(ctx, present, nil)
				graphql.AddError(rctx, apperr.PasswordChangeRequired())
				return graphql.OneShot(&graphql.Response{Errors: graphql.GetErrors(rctx)})
			}
		}
		return next(ctx)
	}
}
