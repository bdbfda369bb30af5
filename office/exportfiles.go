package office

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/blob"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/job"
	"github.com/korrigo/korrigo/jobs"
	"github.com/korrigo/korrigo/storage"
)

// maxFinalPDF bounds one final PDF read into a ZIP (a copy is at most 500
// pages of a 50 MB scan, plus marks).
const maxFinalPDF = 256 << 20

// checkPDFExport names what blocks a PDF_ZIP export: no GRADED copy.
func (s *Service) checkPDFExport(ctx context.Context, ex *ent.Exam) error {
	n, err := s.db.Client.ExamCopy.Query().Where(examcopy.ExamID(ex.ID), examcopy.StatusEQ(examcopy.StatusGRADED)).
		Count(system(ctx))
	if err != nil {
		return fmt.Errorf("count graded copies of %s: %w", ex.ID, err)
	}
	if n == 0 {
		return apperr.BadInputf("nothing to export: no copy of this exam is GRADED").With("blockers", []string{"NO_GRADED_COPY"})
	}
	return nil
}

// CopyExportResult is one copy's outcome in an EXPORT_PDFS job's result.
type CopyExportResult struct {
	CopyID      string `json:"copyId"`
	AnonymousID string `json:"anonymousId"`
	OK          bool   `json:"ok"`
	// Entry is the file's name in the ZIP (when OK).
	Entry string `json:"entry,omitempty"`
	// Error says why the copy is missing from the ZIP.
	Error string `json:"error,omitempty"`
}

// writePDFZip writes a ZIP of the final PDFs of the exam's GRADED copies,
// one entry per copy named by its anonymous id (the final PDF carries no
// name either), in anonymous-id order. A copy whose final PDF is missing or
// unreadable (no blob, file gone, size or checksum wrong) is reported in the
// result and skipped; the ZIP fails only when no copy could be written.
func (s *Service) writePDFZip(ctx context.Context, ex *ent.Exam, w io.Writer, progress func(done, total int)) (*jobs.ExportFile, error) {
	copies, err := s.db.Client.ExamCopy.Query().
		Where(examcopy.ExamID(ex.ID), examcopy.StatusEQ(examcopy.StatusGRADED)).
		WithFinalBlob().Order(ent.Asc(examcopy.FieldAnonymousID)).All(system(ctx))
	if err != nil {
		return nil, fmt.Errorf("read graded copies of %s: %w", ex.ID, err)
	}
	if len(copies) == 0 {
		return nil, apperr.BadInputf("nothing to export: no copy of this exam is GRADED")
	}
	zw := zip.NewWriter(w)
	results := make([]CopyExportResult, 0, len(copies))
	written := 0
	progress(0, len(copies))
	for i, c := range copies {
		r := CopyExportResult{CopyID: c.ID, AnonymousID: c.AnonymousID}
		data, err := s.finalPDF(c)
		if err != nil {
			r.Error = err.Error()
		} else {
			r.Entry = c.AnonymousID + ".pdf"
			hdr := &zip.FileHeader{Name: r.Entry, Method: zip.Store, Modified: c.UpdatedAt.UTC()}
			if c.GradedAt != nil {
				hdr.Modified = c.GradedAt.UTC()
			}
			f, err := zw.CreateHeader(hdr)
			if err != nil {
				return nil, fmt.Errorf("zip entry %s: %w", r.Entry, err)
			}
			if _, err := f.Write(data); err != nil {
				return nil, fmt.Errorf("zip entry %s: %w", r.Entry, err)
			}
			r.OK = true
			written++
		}
		results = append(results, r)
		progress(i+1, len(copies))
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if written == 0 {
		return nil, apperr.BadInputf("no final PDF of the %d graded copies could be read", len(copies)).
			With("copies", results)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("close zip: %w", err)
	}
	return &jobs.ExportFile{Filename: exportName(ex, "copies", "zip"), MediaType: mediaZIP,
		Result: map[string]any{"format": FormatPDFZip, "copies": len(copies), "written": written,
			"failed": len(copies) - written, "results": results}}, nil
}

// finalPDF reads a copy's final PDF whole and checks it against its Blob row,
// so a damaged file never becomes a damaged ZIP entry. The error is the
// reason shown in the job's result.
func (s *Service) finalPDF(c *ent.ExamCopy) ([]byte, error) {
	b := c.Edges.FinalBlob
	if b == nil {
		return nil, errors.New("the copy has no final PDF")
	}
	f, err := s.jobs.Store().Open(b.Sha256)
	if errors.Is(err, storage.ErrNotFound) {
		s.log.Error("final PDF file missing from the blob store", zap.String("copy_id", c.ID), zap.String("sha256", b.Sha256))
		return nil, errors.New("the final PDF file is missing from the blob store")
	}
	if err != nil {
		s.log.Error("open final PDF", zap.String("copy_id", c.ID), zap.Error(err))
		return nil, errors.New("the final PDF file cannot be read")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFinalPDF+1))
	if err != nil {
		s.log.Error("read final PDF", zap.String("copy_id", c.ID), zap.Error(err))
		return nil, errors.New("the final PDF file cannot be read")
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != b.Size || hex.EncodeToString(sum[:]) != b.Sha256 {
		s.log.Error("final PDF damaged (size or checksum)", zap.String("copy_id", c.ID), zap.String("sha256", b.Sha256))
		return nil, errors.New("the final PDF file is damaged (size or checksum mismatch)")
	}
	return data, nil
}

// ExportDownload is an export file opened for download.
type ExportDownload struct {
	Filename  string
	MediaType string
	Size      int64
	Body      io.ReadCloser
}

// exportResult is what the download needs of an export job's result.
type exportResult struct {
	Filename  string `json:"filename"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	// Expired: the retention passed and the file is gone (jobs.ExpireExports).
	Expired   bool   `json:"expired"`
	ExpiredAt string `json:"expiredAt"`
}

// ExportExpiredReason is the extensions.reason of NOT_FOUND for the download
// of an export whose file expired (the file route answers it with 410).
const ExportExpiredReason = "EXPORT_EXPIRED"

func isExport(k job.Kind) bool { return k == job.KindEXPORT_GRADES || k == job.KindEXPORT_PDFS }

// ExportFilename is the file name of a finished export job, "" when the job
// has no file to download (not an export, not SUCCEEDED, file expired).
func ExportFilename(j *ent.Job) string {
	if !isExport(j.Kind) || j.State != job.StateSUCCEEDED {
		return ""
	}
	var r exportResult
	if json.Unmarshal(j.Result, &r) != nil || r.SHA256 == "" || r.Expired {
		return ""
	}
	return r.Filename
}

// OpenExport opens the file of a finished export job for the caller (admins
// only: grade files name students) and records the download in the audit
// log. The caller closes Body. An expired export is NOT_FOUND with
// extensions.reason EXPORT_EXPIRED and expiredAt.
func (s *Service) OpenExport(ctx context.Context, jobID string) (*ExportDownload, error) {
	if _, err := adminReader(ctx); err != nil {
		return nil, err
	}
	j, err := s.db.Client.Job.Get(system(ctx), jobID)
	switch {
	case ent.IsNotFound(err):
		return nil, apperr.NotFoundf("export %s not found", jobID)
	case err != nil:
		return nil, fmt.Errorf("read job %s: %w", jobID, err)
	case !isExport(j.Kind) || j.State != job.StateSUCCEEDED:
		return nil, apperr.NotFoundf("export %s has no file", jobID)
	}
	var r exportResult
	if err := json.Unmarshal(j.Result, &r); err != nil {
		return nil, apperr.NotFoundf("export %s has no file", jobID)
	}
	if r.Expired {
		return nil, apperr.NotFoundf("the file of export %s expired (exports are kept for a limited time); export again", jobID).
			With("reason", ExportExpiredReason).With("expiredAt", r.ExpiredAt)
	}
	if r.SHA256 == "" {
		return nil, apperr.NotFoundf("export %s has no file", jobID)
	}
	b, err := s.db.Client.Blob.Query().Where(blob.Sha256(r.SHA256)).Only(system(ctx))
	if err != nil {
		return nil, fmt.Errorf("read blob of export %s: %w", jobID, err)
	}
	f, err := s.jobs.Store().Open(b.Sha256)
	if err != nil {
		return nil, fmt.Errorf("open file of export %s: %w", jobID, err)
	}
	target := ""
	if j.ExamID != nil {
		target = *j.ExamID
	}
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		return s.auditTx(ctx, tx, AuditExportDownloaded, target, map[string]any{
			"jobId": j.ID, "kind": string(j.Kind), "filename": r.Filename, "size": b.Size})
	})
	if err != nil {
		f.Close()
		return nil, fail(err, "audit download of export %s", jobID)
	}
	return &ExportDownload{Filename: r.Filename, MediaType: r.MediaType, Size: b.Size, Body: f}, nil
}
