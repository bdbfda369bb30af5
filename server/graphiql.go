package server

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"path"
	"strings"
	"time"
)

// graphiqlAssets are the vendored GraphiQL, React and ReactDOM builds and our
// bootstrap (server/graphiql/README.md): the explorer needs no CDN.
//
//go:embed graphiql/*.js graphiql/*.css graphiql/LICENSE.*
var graphiqlAssets embed.FS

//go:embed graphiql/index.html
var graphiqlIndex string

var graphiqlPage = template.Must(template.New("graphiql").Parse(graphiqlIndex))

// graphiqlStarted dates the embedded assets for Last-Modified (they change
// only with the binary).
var graphiqlStarted = time.Now()

// graphiqlCSP is the explorer page's policy: scripts and stylesheets only by
// the request's nonce (no 'unsafe-inline', no 'unsafe-eval'), requests to
// this origin only, never framed.
func graphiqlCSP(nonce string) string {
	return "default-src 'none'; script-src 'nonce-" + nonce + "'; style-src 'self' 'nonce-" + nonce + "'; " +
		"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
}

// graphiql serves the schema explorer at /graphiql and its assets under
// /graphiql/. The page itself reads nothing: introspection through /graphql
// is open to anonymous callers (rate limited per IP), data needs a session.
func graphiql() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/graphiql" || r.URL.Path == "/graphiql/" {
			var b [18]byte
			_, _ = rand.Read(b[:])
			nonce := base64.RawURLEncoding.EncodeToString(b[:])
			var buf bytes.Buffer
			if err := graphiqlPage.Execute(&buf, struct{ Nonce string }{nonce}); err != nil {
				http.Error(w, "internal server error", http.StatusInternalServerError)
				return
			}
			h := w.Header()
			h.Set("Content-Security-Policy", graphiqlCSP(nonce))
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-store") // a nonce is single-use
			_, _ = w.Write(buf.Bytes())
			return
		}
		name := path.Base(r.URL.Path)
		if strings.HasPrefix(name, ".") || name == "index.html" {
			http.NotFound(w, r)
			return
		}
		f, err := graphiqlAssets.Open("graphiql/" + name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		if strings.HasPrefix(name, "LICENSE") {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		http.ServeContent(w, r, name, graphiqlStarted, f.(readSeeker))
	})
}

type readSeeker interface {
	Read([]byte) (int, error)
	Seek(int64, int) (int64, error)
}
