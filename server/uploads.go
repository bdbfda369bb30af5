package server

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/jobs"
	"github.com/korrigo/korrigo/pdf"
	"github.com/korrigo/korrigo/storage"
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

// pdfRunner is the isolated PDF subprocess runner: this binary's `pdf`
// command, with the configured time and memory limits (KORRIGO_PDF_TIMEOUT,
// default 60s; KORRIGO_PDF_MEMORY_LIMIT_MB, default 1024).
func pdfRunner(log *zap.Logger, cfg Config) *pdf.Runner {
	r := &pdf.Runner{Logger: log.Named("pdf"), Timeout: cfg.PDFTimeout, MemoryLimit: int64(cfg.PDFMemoryLimitMB) << 20}
	tmp := filepath.Join(cfg.DataDir, "tmp")
	if os.MkdirAll(tmp, 0o750) == nil {
		r.TempDir = tmp
	}
	return r
}

// newJobs builds the job service: blob store under KORRIGO_DATA_DIR/blobs, PDF
// runner, River client, with cfg.ServeWorkers workers in this process.
func newJobs(cfg Config, log *zap.Logger, d *db.DB, progress jobs.ProgressPublisher) (*jobs.Service, error) {
	store, err := storage.New(filepath.Join(cfg.DataDir, "blobs"))
	if err != nil {
		return nil, err
	}
	return jobs.New(jobs.Config{DB: d, Store: store, Runner: pdfRunner(log, cfg),
		Logger: log.Named("jobs"), Progress: progress, Workers: cfg.ServeWorkers})
}

// NewWorker wires what `korrigo worker` needs: the database, grading and the
// job service with cfg.Workers workers, and no HTTP server.
func NewWorker(ctx context.Context, cfg Config, log *zap.Logger) (*App, error) {
	cfg.ServeWorkers = cfg.Workers
	return NewApp(ctx, cfg, log)
}

// RunJobs runs the job workers until ctx ends, then stops them gracefully
// (running jobs may finish within the shutdown budget).
func (a *App) RunJobs(ctx context.Context) error {
	if err := a.Services.Jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	<-ctx.Done()
	stop, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	defer cancel()
	return a.Services.Jobs.Stop(stop)
}
