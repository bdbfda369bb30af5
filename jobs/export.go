package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/storage"
)

// MaxExportBytes bounds an export file (a ZIP of an exam's final PDFs).
const MaxExportBytes = 8 << 30

// ExportFile describes the file an Exporter wrote.
type ExportFile struct {
	Filename  string
	MediaType string
	// Result is the job's result besides the file's own description
	// (filename, mediaType, size, sha256, added by the runner): counts,
	// per-copy outcomes.
	Result map[string]any
}

// Exporter writes the files of EXPORT_GRADES and EXPORT_PDFS jobs from their
// Job row (office.Service implements it). A typed (*apperr.Error) failure is
// final and shown as the job's error.
type Exporter interface {
	// WriteExport streams the file of j into w, reporting progress.
	WriteExport(ctx context.Context, j *ent.Job, w io.Writer, progress func(done, total int)) (*ExportFile, error)
	// ExportStored runs in the transaction that ends j with its stored file
	// and result (the audit entry commits with it).
	ExportStored(ctx context.Context, tx *ent.Tx, j *ent.Job, result map[string]any) error
	// ExportExpired runs in the transaction that drops the file reference of
	// j (ExpireExports); meta is its new result plus the dropped sha256.
	ExportExpired(ctx context.Context, tx *ent.Tx, j *ent.Job, meta map[string]any) error
}

// SetExporter sets who writes export files. Call before Start.
func (s *Service) SetExporter(e Exporter) { s.exporter = e }

type exportArgs struct {
	JobID string `json:"jobId"`
}

func (exportArgs) Kind() string { return "korrigo_export_grades" }

// EnqueueExport hands an EXPORT_GRADES or EXPORT_PDFS job to River in tx, the
// transaction that recorded it.
func (s *Service) EnqueueExport(ctx context.Context, tx *ent.Tx, j *ent.Job) error {
	return s.enqueue(ctx, tx, j, exportArgs{JobID: j.ID})
}

type exportWorker struct {
	river.WorkerDefaults[exportArgs]
	s *Service
}

// Work streams the export file into the blob store (temp file, fsync,
// rename: content-addressed), then in one transaction records its Blob row,
// ends the job with the file's description as its result and lets the
// exporter write the audit entry. Nothing is kept of a failed attempt.
func (w *exportWorker) Work(ctx context.Context, rj *river.Job[exportArgs]) error {
	s := w.s
	a, ok, err := s.begin(ctx, rj.Args.JobID, rj.JobRow)
	if err != nil || !ok {
		return err
	}
	err = s.safely(ctx, a, func() error {
		if s.exporter == nil {
			return fmt.Errorf("%w: no exporter configured", errPermanent)
		}
		return s.export(ctx, a)
	})
	if err == nil {
		s.publishID(ctx, a.job.ID)
		return nil
	}
	var typed *apperr.Error
	if errors.As(err, &typed) { // what blocks the export: final, in the user's words
		if ferr := s.markFailed(context.WithoutCancel(ctx), a.job.ID, typed.Message); ferr != nil {
			return errors.Join(err, ferr)
		}
		s.publishID(ctx, a.job.ID)
		return river.JobCancel(err)
	}
	return a.fail(ctx, err, func(ctx context.Context, reason string) error { return s.markFailed(ctx, a.job.ID, reason) })
}

func (s *Service) export(ctx context.Context, a *attempt) error {
	file, ref, err := s.writeExport(ctx, a)
	if err != nil {
		return err
	}
	result := map[string]any{}
	for k, v := range file.Result {
		result[k] = v
	}
	result["filename"], result["mediaType"] = file.Filename, file.MediaType
	result["size"], result["sha256"] = ref.Size, ref.SHA256
	err = db.WithTx(ctx, s.cfg.DB.Client, func(tx *ent.Tx) error {
		if _, err := typedBlobRow(ctx, tx, ref, file.MediaType, 0); err != nil {
			return err
		}
		if err := succeed(ctx, tx, a.job.ID, result); err != nil {
			return err
		}
		return s.exporter.ExportStored(ctx, tx, a.job, result)
	})
	if err != nil {
		s.discard(ctx, ref)
		return err
	}
	return nil
}

// writeExport runs the exporter into a pipe that the blob store reads, so a
// large ZIP never sits in memory. A failure on either side stops both, and
// the store keeps nothing.
func (s *Service) writeExport(ctx context.Context, a *attempt) (*ExportFile, storage.Ref, error) {
	pr, pw := io.Pipe()
	var (
		file *ExportFile
		werr error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("export panicked", zap.String("job_id", a.job.ID), zap.Any("panic", p),
					zap.ByteString("stack", debug.Stack()))
				werr = &internalError{msg: fmt.Sprintf("panic: %v", p)}
			}
			pw.CloseWithError(werr) // nil: EOF for the reader
		}()
		file, werr = s.exporter.WriteExport(ctx, a.job, pw, func(done, total int) { a.progress(ctx, done, total) })
	}()
	ref, perr := s.cfg.Store.Put(ctx, pr, MaxExportBytes)
	pr.CloseWithError(errors.New("export: the blob store stopped reading")) // unblocks the writer after a store error
	<-done
	switch {
	case werr != nil:
		if perr == nil {
			s.discard(ctx, ref)
		}
		return nil, storage.Ref{}, werr
	case perr != nil:
		return nil, storage.Ref{}, fmt.Errorf("store export file: %w", perr)
	case file == nil:
		s.discard(ctx, ref)
		return nil, storage.Ref{}, fmt.Errorf("%w: the exporter described no file", errPermanent)
	}
	return file, ref, nil
}
