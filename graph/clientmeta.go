package graph

import (
	"context"

	"github.com/korrigo/korrigo/auth"
	"github.com/korrigo/korrigo/server/httpctx"
)

// clientMeta is what the auth service records about the caller's client.
func clientMeta(ctx context.Context) auth.ClientMeta {
	meta := auth.ClientMeta{IP: auth.ClientIPFromContext(ctx)}
	if x := httpctx.FromContext(ctx); x != nil && x.Request != nil {
		meta.UserAgent = x.Request.UserAgent()
	}
	return meta
}
