package server

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

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
// (must_change_password) on every root field, over HTTP and WebSocket alike,
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
