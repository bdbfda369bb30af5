package server

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/jobs"
)

// maxUploadBody is the largest multipart request: the file limit plus room
// for the operations and map parts and the multipart headers.
const maxUploadBody = jobs.MaxUploadBytes + 64<<10

// uploadTransport is gqlgen's GraphQL multipart request transport. Files stay
// in memory (MaxMemory above the body limit): nothing is written to disk
// before validation.
func uploadTransport() transport.MultipartForm {
	return transport.MultipartForm{MaxUploadSize: maxUploadBody + 1, MaxMemory: maxUploadBody + 2}
}

func isMultipart(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "multipart/form-data"
}

// guardUploads protects multipart requests (DESIGN.md §11):
//   - CSRF: a browser can send a multipart form cross-site without a preflight,
//     so one is only accepted with a header such a form cannot set
//     (Apollo-Require-Preflight or X-Korrigo-Csrf) or with a Bearer token;
//   - size: counted while the body streams; past the limit the request ends
//     with PAYLOAD_TOO_LARGE (413) whatever gqlgen was about to answer.
func guardUploads(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isMultipart(r) {
			next.ServeHTTP(w, r)
			return
		}
		if r.Header.Get("Apollo-Require-Preflight") == "" && r.Header.Get("X-Korrigo-Csrf") == "" &&
			!strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			writeError(w, http.StatusBadRequest, apperr.Forbidden,
				"multipart requests need an Apollo-Require-Preflight or X-Korrigo-Csrf header, or a Bearer token")
			return
		}
		if r.ContentLength > maxUploadBody {
			tooLarge(w)
			return
		}
		lr := &limitedBody{r: r.Body, left: maxUploadBody}
		r.Body = struct {
			io.Reader
			io.Closer
		}{lr, r.Body}
		gw := &guardedWriter{ResponseWriter: w, over: &lr.over}
		next.ServeHTTP(gw, r)
		if lr.over.Load() && !gw.wrote {
			tooLarge(w)
		}
	})
}

func tooLarge(w http.ResponseWriter) {
	e := jobs.TooLarge()
	writeError(w, http.StatusRequestEntityTooLarge, e.Code, e.Message)
}

type limitedBody struct {
	r    io.Reader
	left int64
	over atomic.Bool
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells "exactly at the limit" from "over it".
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			l.over.Store(true)
			return 0, errors.New("request body too large")
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// guardedWriter drops gqlgen's answer once the body went over the limit, so
// the client gets the typed PAYLOAD_TOO_LARGE instead.
type guardedWriter struct {
	http.ResponseWriter
	over  *atomic.Bool
	wrote bool
}

func (g *guardedWriter) WriteHeader(code int) {
	if g.over.Load() {
		return
	}
	g.wrote = true
	g.ResponseWriter.WriteHeader(code)
}

func (g *guardedWriter) Write(b []byte) (int, error) {
	if g.over.Load() {
		return len(b), nil
	}
	g.wrote = true
	return g.ResponseWriter.Write(b)
}
