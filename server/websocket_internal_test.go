package server

import (
	"context"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/auth"
	"github.com/korrigo/korrigo/db/dbtest"
)

// gqlgen keeps the connection_init payload for the socket's life and hands it
// to every operation (transport.GetInitPayload): the credential in it is read
// once and removed, whether it is accepted or not; the rest stays.
func TestWebsocketInitDropsCredentialFromPayload(t *testing.T) {
	d := dbtest.Open(t, dialect.SQLite)
	authn := auth.NewService(d.Client, zap.NewNop(), auth.Options{})
	init := websocketInit(authn, zap.NewNop(), newSocketAuth(authn, zap.NewNop(), time.Minute, time.Second))
	for _, key := range []string{"authorization", "Authorization"} {
		p := transport.InitPayload{key: "Bearer not-a-token", "client": "korrigo-web"}
		if _, _, err := init(context.Background(), p); err == nil {
			t.Fatalf("%s: an unknown token was accepted", key)
		}
		if _, ok := p[key]; ok || p["client"] != "korrigo-web" {
			t.Fatalf("payload after init: %v; want the credential gone and the rest kept", p)
		}
	}
}
