package server

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/rules"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/office"
	"github.com/korrigo/korrigo/server/filesign"
	"github.com/korrigo/korrigo/storage"
)

// files serves copy PDFs behind signed URLs (GET /files/copies/{id}/{kind}.pdf):
// the signature must be valid, unexpired and issued to the caller, and the
// caller must still be allowed to read the copy under the privacy rules
// (teacher: assigned copies; student: own, GRADED, released; admin: all).
// The pages of a copy go to admins as scanned and to correctors with the
// identity zone of header pages removed (pdf.Mask); students get only the
// final PDF. Nothing is cacheable.
func (a *App) files() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		v, ok := privateFileViewer(w, r)
		if !ok {
			return
		}
		rest := strings.TrimPrefix(r.URL.Path, filesign.Path)
		copyID, file, ok := strings.Cut(rest, "/")
		kind := strings.TrimSuffix(file, ".pdf")
		if !ok || (kind != filesign.Pages && kind != filesign.Final) {
			writeError(w, http.StatusNotFound, apperr.NotFound, "no such file")
			return
		}
		q := r.URL.Query()
		if err := a.Services.Files.Verify(copyID, kind, v.UserID, q.Get("exp"), q.Get("sig")); err != nil {
			writeError(w, http.StatusForbidden, apperr.Forbidden, err.Error())
			return
		}
		c, err := a.Services.Client.ExamCopy.Get(ctx, copyID) // the caller's privacy rules
		if ent.IsNotFound(err) {
			writeError(w, http.StatusNotFound, apperr.NotFound, "no such file")
			return
		}
		if err != nil {
			a.fileError(w, r, err)
			return
		}
		var blobID *string
		switch kind {
		case filesign.Pages:
			if v.IsStudent() {
				// Students read their results and the corrected PDF only.
				writeError(w, http.StatusForbidden, apperr.Forbidden, "students read the corrected PDF")
				return
			}
			blobID = c.SourceBlobID
		case filesign.Final:
			if c.Status == examcopy.StatusGRADED {
				blobID = c.FinalBlobID
			}
		}
		if blobID == nil {
			writeError(w, http.StatusNotFound, apperr.NotFound, "no such file")
			return
		}
		var b *ent.Blob
		if kind == filesign.Pages && !v.IsAdmin() {
			// Correctors get the pages with the identity zone removed.
			b, err = a.Services.Jobs.MaskedPages(ctx, c)
		} else {
			b, err = a.Services.Client.Blob.Get(rules.System(ctx), *blobID)
		}
		if err != nil {
			a.fileError(w, r, err)
			return
		}
		f, err := a.Services.Jobs.Store().Open(b.Sha256)
		if err != nil {
			a.fileError(w, r, err)
			return
		}
		defer f.Close()
		// Every copy download is in the audit trail (who, which copy, which
		// file); no trail, no file.
		meta := map[string]any{"kind": kind, "anonymousId": c.AnonymousID,
			"masked": kind == filesign.Pages && !v.IsAdmin()}
		if err := a.Services.Auth.Audit(ctx, AuditCopyDownloaded, c.ID, meta); err != nil {
			a.fileError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Content-Length", fmt.Sprint(b.Size))
		name := c.AnonymousID
		if kind == filesign.Final {
			name += "-corrigee"
		}
		w.Header().Set("Content-Disposition", fmt.Sprintf(`inline; filename="%s.pdf"`, name))
		if _, err := io.Copy(w, f); err != nil {
			a.Log.Warn("serve file", zap.Error(err))
		}
	})
}

// exportFiles serves export files behind signed URLs (GET
// /files/exports/{jobId}/{filename}, from Job.downloadUrl): the signature
// must be valid, unexpired and issued to the caller, and the caller must be
// an admin (office.OpenExport decides, and audits the download). Nothing is
// cacheable; the file is an attachment with its name. An export whose file
// expired (KORRIGO_EXPORT_RETENTION) answers 410 Gone, NOT_FOUND with
// extensions.reason EXPORT_EXPIRED and expiredAt.
func (a *App) exportFiles() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		v, ok := privateFileViewer(w, r)
		if !ok {
			return
		}
		jobID, _, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, filesign.ExportPath), "/")
		if !ok || jobID == "" {
			writeError(w, http.StatusNotFound, apperr.NotFound, "no such file")
			return
		}
		q := r.URL.Query()
		if err := a.Services.Files.Verify(jobID, filesign.Export, v.UserID, q.Get("exp"), q.Get("sig")); err != nil {
			writeError(w, http.StatusForbidden, apperr.Forbidden, err.Error())
			return
		}
		f, err := a.Services.Office.OpenExport(ctx, jobID)
		var typed *apperr.Error
		switch {
		case errors.As(err, &typed) && typed.Code == apperr.Forbidden:
			writeError(w, http.StatusForbidden, apperr.Forbidden, typed.Message)
			return
		case errors.As(err, &typed) && typed.Code == apperr.NotFound && typed.Extensions["reason"] == office.ExportExpiredReason:
			// Gone for good, unlike a link that never named a file.
			writeErrorExt(w, http.StatusGone, apperr.NotFound, typed.Message, typed.Extensions)
			return
		case errors.As(err, &typed) && typed.Code == apperr.NotFound:
			writeError(w, http.StatusNotFound, apperr.NotFound, "no such file")
			return
		case err != nil:
			a.fileError(w, r, err)
			return
		}
		defer f.Body.Close()
		w.Header().Set("Content-Type", f.MediaType)
		w.Header().Set("Content-Length", fmt.Sprint(f.Size))
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Filename}))
		if _, err := io.Copy(w, f.Body); err != nil {
			a.Log.Warn("serve export", zap.Error(err))
		}
	})
}

// AuditCopyDownloaded is the audit action of a copy PDF served by the file
// route (pages or final; metadata: kind, anonymousId, masked).
const AuditCopyDownloaded = "COPY_PDF_DOWNLOADED"

func (a *App) fileError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, storage.ErrNotFound) {
		a.Log.Error("blob file missing", zap.Error(err))
	} else {
		a.Log.Error("serve file", zap.Error(err))
	}
	a.reporter.internal(r.Context(), fmt.Errorf("serve file: %w", err))
	writeError(w, http.StatusInternalServerError, apperr.InternalError, "internal server error")
}

// privateFileViewer starts a file response that is never cached nor sniffed
// and returns the signed-in caller, or answers 401 when there is none.
func privateFileViewer(w http.ResponseWriter, r *http.Request) (*viewer.Viewer, bool) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	v := viewer.FromContext(r.Context())
	if v == nil {
		writeError(w, http.StatusUnauthorized, apperr.Unauthenticated, "sign in first")
		return nil, false
	}
	return v, true
}
