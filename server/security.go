package server

import (
	"mime"
	"net/http"
	"strings"

	"github.com/korrigo/korrigo/apperr"
)

// apiCSP is the Content-Security-Policy of every response but the GraphiQL
// page: the API serves JSON and files, never a document that runs code or may
// be framed.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// withSecurityHeaders sets the headers every response carries. A handler that
// serves a page (GraphiQL) replaces the Content-Security-Policy with its own,
// still without 'unsafe-inline'.
func withSecurityHeaders(production bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", apiCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		if production {
			// Production runs behind TLS (Secure cookies); two years, as the
			// preload list asks.
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// preflightHeaders are headers a cross-site HTML form or a "simple" fetch
// cannot send: their presence proves the browser ran a CORS preflight (which
// the API does not grant to other origins).
var preflightHeaders = []string{"X-Korrigo-Csrf", "Apollo-Require-Preflight"}

// guardCSRF refuses GraphQL requests a foreign page could make a browser send
// with the user's session cookie (DESIGN.md §11):
//   - POST must be application/json (a cross-site form or a no-cors fetch can
//     only send text/plain, urlencoded or multipart) or carry a preflight
//     header, unless it authenticates with a Bearer token, which a browser
//     never attaches on its own; multipart is left to guardUploads, which
//     applies the same rule;
//   - GET runs queries only (gqlgen's GET transport refuses mutations);
//     anything else but OPTIONS is refused.
func guardCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		case http.MethodPost:
		default:
			w.Header().Set("Allow", "GET, POST, OPTIONS")
			writeError(w, http.StatusMethodNotAllowed, apperr.BadUserInput, "use GET (queries) or POST")
			return
		}
		if isMultipart(r) || nonSimple(r) {
			next.ServeHTTP(w, r)
			return
		}
		writeErrorExt(w, http.StatusForbidden, apperr.Forbidden,
			"send GraphQL requests as application/json, or with an X-Korrigo-Csrf header, or with a Bearer token",
			map[string]any{"reason": "CSRF"})
	})
}

// nonSimple reports a request a browser only sends cross-site after a CORS
// preflight, or one that does not ride on the ambient session cookie.
func nonSimple(r *http.Request) bool {
	if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		return true
	}
	for _, h := range preflightHeaders {
		if r.Header.Get(h) != "" {
			return true
		}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}
