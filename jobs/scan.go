package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/job"
	"github.com/korrigo/korrigo/ids"
	"github.com/korrigo/korrigo/pdf"
	"github.com/korrigo/korrigo/storage"
)

// Upload is a file received by the API.
type Upload struct {
	Data     []byte
	Filename string
}

// SubmitScan validates a class scan and queues its SPLIT_SCAN job (admins).
// Validation runs in the PDF subprocess before anything is stored: a refused
// file leaves no file, no Blob row and no job.
func (s *Service) SubmitScan(ctx context.Context, examID string, up Upload) (*ent.Job, error) {
	return s.submit(ctx, job.KindSPLIT_SCAN, examID, up, nil)
}

// SubmitCopy validates one student's PDF and queues its IMPORT_COPY job
// (admins); studentID, when given, identifies the copy.
func (s *Service) SubmitCopy(ctx context.Context, examID string, up Upload, studentID *string) (*ent.Job, error) {
	return s.submit(ctx, job.KindIMPORT_COPY, examID, up, studentID)
}

func (s *Service) submit(ctx context.Context, kind job.Kind, examID string, up Upload, studentID *string) (*ent.Job, error) {
	v := viewer.FromContext(ctx)
	switch {
	case v == nil:
		return nil, apperr.Unauthenticatedf("sign in first")
	case !v.CanWrite():
		return nil, apperr.Forbiddenf("this API token is read-only")
	case !v.IsAdmin():
		return nil, apperr.Forbiddenf("only admins upload scans")
	}
	ex, err := s.cfg.DB.Client.Exam.Get(ctx, examID)
	switch {
	case ent.IsNotFound(err):
		return nil, apperr.NotFoundf("exam %s not found", examID)
	case err != nil:
		return nil, fmt.Errorf("read exam: %w", err)
	case ex.DeletedAt != nil:
		return nil, apperr.BadInputf("exam %s is deleted", examID)
	}
	if studentID != nil {
		if _, err := s.cfg.DB.Client.Student.Get(ctx, *studentID); err != nil {
			if ent.IsNotFound(err) {
				return nil, apperr.NotFoundf("student %s not found", *studentID)
			}
			return nil, fmt.Errorf("read student: %w", err)
		}
	}
	if len(up.Data) > MaxUploadBytes {
		return nil, TooLarge()
	}
	info, err := s.cfg.Runner.Validate(ctx, up.Data, MaxPages)
	if err != nil {
		return nil, invalidUpload(err)
	}

	ref, err := s.put(ctx, up.Data)
	if err != nil {
		return nil, err
	}
	var j *ent.Job
	err = db.WithTx(ctx, s.cfg.DB.Client, func(tx *ent.Tx) error {
		b, err := blobRow(ctx, tx, ref, info.PageCount)
		if err != nil {
			return err
		}
		params, err := json.Marshal(scanParams{BlobID: b.ID, StudentID: studentID})
		if err != nil {
			return err
		}
		at := now()
		j, err = tx.Job.Create().SetID(ids.New(ids.Job)).SetKind(kind).SetState(job.StateQUEUED).
			SetExamID(examID).SetRequestedByID(v.UserID).SetArgs(params).
			SetCreatedAt(at).SetUpdatedAt(at).Save(system(ctx))
		if err != nil {
			return fmt.Errorf("record job: %w", err)
		}
		var args river.JobArgs = splitArgs{JobID: j.ID}
		if kind == job.KindIMPORT_COPY {
			args = importArgs{JobID: j.ID}
		}
		return s.enqueue(ctx, tx, j, args)
	})
	if err != nil {
		s.discard(ctx, ref)
		return nil, err
	}
	s.publish(ctx, j)
	return j.Unwrap(), nil
}

// TooLarge is the PAYLOAD_TOO_LARGE error of an upload over the limit.
func TooLarge() *apperr.Error {
	return apperr.New(apperr.PayloadTooLarge, "the file is larger than %d MB", MaxUploadBytes>>20).
		With("limit", MaxUploadBytes)
}

// invalidUpload maps a validation failure to INVALID_PDF with its reason. A
// file that crashes or hangs the PDF library is refused too, as unparsable.
func invalidUpload(err error) error {
	var ipe *pdf.InvalidPDFError
	var re *pdf.RunnerError
	switch {
	case errors.As(err, &ipe):
		return apperr.New(apperr.InvalidPDF, "%s", ipe.Message).With("reason", ipe.Reason)
	case errors.As(err, &re) && re.Kind != pdf.RunnerCanceled && re.Kind != pdf.RunnerFailed:
		return apperr.New(apperr.InvalidPDF, "The PDF file cannot be processed (%s).", re.Message).
			With("reason", pdf.ReasonUnparsable)
	}
	return err
}

// --- workers ---

type splitWorker struct {
	river.WorkerDefaults[splitArgs]
	s *Service
}

func (w *splitWorker) Work(ctx context.Context, rj *river.Job[splitArgs]) error {
	return w.s.runScanJob(ctx, rj.Args.JobID, rj.JobRow, true)
}

type importWorker struct {
	river.WorkerDefaults[importArgs]
	s *Service
}

func (w *importWorker) Work(ctx context.Context, rj *river.Job[importArgs]) error {
	return w.s.runScanJob(ctx, rj.Args.JobID, rj.JobRow, false)
}

func (s *Service) runScanJob(ctx context.Context, jobID string, rj *rivertype.JobRow, split bool) error {
	a, ok, err := s.begin(ctx, jobID, rj)
	if err != nil || !ok {
		return err
	}
	err = s.safely(ctx, a, func() error {
		if split {
			return s.split(ctx, a)
		}
		return s.importCopy(ctx, a)
	})
	if err == nil {
		s.publishID(ctx, jobID)
		return nil
	}
	return a.fail(ctx, err, func(ctx context.Context, reason string) error { return s.markFailed(ctx, jobID, reason) })
}

func (s *Service) scanInput(ctx context.Context, a *attempt) (scanParams, []byte, *ent.Exam, error) {
	var p scanParams
	if err := json.Unmarshal(a.job.Args, &p); err != nil || p.BlobID == "" {
		return p, nil, nil, fmt.Errorf("%w: bad job arguments", errPermanent)
	}
	if a.job.ExamID == nil {
		return p, nil, nil, fmt.Errorf("%w: job without exam", errPermanent)
	}
	ex, err := s.cfg.DB.Client.Exam.Get(system(ctx), *a.job.ExamID)
	if err != nil {
		return p, nil, nil, fmt.Errorf("read exam: %w", err)
	}
	data, _, err := s.readBlob(ctx, p.BlobID)
	return p, data, ex, err
}

func (s *Service) split(ctx context.Context, a *attempt) error {
	_, data, ex, err := s.scanInput(ctx, a)
	if err != nil {
		return err
	}
	booklets, err := s.cfg.Runner.SplitScan(ctx, data, ex.PagesPerBooklet, func(done, total int) {
		a.progress(ctx, done, total)
	})
	if err != nil {
		return err
	}
	if err := s.afterPDF(ctx, a); err != nil {
		return err
	}
	refs := make([]storage.Ref, len(booklets))
	committed := false
	defer func() {
		if !committed {
			s.discard(ctx, refs...)
		}
	}()
	for i, b := range booklets {
		if refs[i], err = s.put(ctx, b.PDF); err != nil {
			return err
		}
	}
	if err := s.afterStore(ctx, a); err != nil {
		return err
	}
	var result scanResult
	err = s.withAnonymousIDs(ctx, ex.ID, func(tx *ent.Tx, next func() (string, error)) error {
		result = scanResult{}
		// A re-upload replaces the copies the previous scans made, as long
		// as nobody has started on them: STAGING and not identified.
		old, err := tx.ExamCopy.Query().Where(examcopy.ExamID(ex.ID), examcopy.StatusEQ(examcopy.StatusSTAGING),
			examcopy.StudentIDIsNil()).IDs(system(ctx))
		if err != nil {
			return fmt.Errorf("list staging copies: %w", err)
		}
		if len(old) > 0 {
			if err := tx.Job.Update().Where(job.CopyIDIn(old...)).ClearCopyID().Exec(system(ctx)); err != nil {
				return fmt.Errorf("unlink jobs: %w", err)
			}
			if _, err := tx.ExamCopy.Delete().Where(examcopy.IDIn(old...)).Exec(system(ctx)); err != nil {
				return fmt.Errorf("replace staging copies: %w", err)
			}
			result.Replaced = len(old)
		}
		for i, b := range booklets {
			c, err := s.createCopy(ctx, tx, ex, refs[i], b, nil, next)
			if err != nil {
				return err
			}
			result.CopyIDs = append(result.CopyIDs, c.ID)
			if b.Short {
				result.ShortBooklets++
			}
		}
		result.Copies = len(result.CopyIDs)
		return succeed(ctx, tx, a.job.ID, result)
	})
	committed = err == nil
	return err
}

func (s *Service) importCopy(ctx context.Context, a *attempt) error {
	p, data, ex, err := s.scanInput(ctx, a)
	if err != nil {
		return err
	}
	a.progress(ctx, 0, 1)
	b, err := s.cfg.Runner.ImportCopy(ctx, data)
	if err != nil {
		return err
	}
	if err := s.afterPDF(ctx, a); err != nil {
		return err
	}
	ref, err := s.put(ctx, b.PDF)
	if err != nil {
		return err
	}
	err = s.withAnonymousIDs(ctx, ex.ID, func(tx *ent.Tx, next func() (string, error)) error {
		c, err := s.createCopy(ctx, tx, ex, ref, b, p.StudentID, next)
		if err != nil {
			return err
		}
		if err := tx.Job.UpdateOneID(a.job.ID).SetCopyID(c.ID).Exec(system(ctx)); err != nil {
			return fmt.Errorf("link job to copy: %w", err)
		}
		return succeed(ctx, tx, a.job.ID, scanResult{CopyIDs: []string{c.ID}, Copies: 1})
	})
	if err != nil {
		s.discard(ctx, ref)
	}
	return err
}

type scanResult struct {
	Copies        int      `json:"copies"`
	CopyIDs       []string `json:"copyIds"`
	ShortBooklets int      `json:"shortBooklets"`
	Replaced      int      `json:"replaced"`
}

func (s *Service) afterStore(ctx context.Context, a *attempt) error {
	if h := s.cfg.Hooks; h != nil && h.AfterStore != nil {
		return h.AfterStore(ctx, string(a.job.Kind), a.rj.Attempt)
	}
	return nil
}

func (s *Service) afterPDF(ctx context.Context, a *attempt) error {
	if h := s.cfg.Hooks; h != nil && h.AfterPDF != nil {
		return h.AfterPDF(ctx, string(a.job.Kind), a.rj.Attempt)
	}
	return nil
}

func (s *Service) createCopy(ctx context.Context, tx *ent.Tx, ex *ent.Exam, ref storage.Ref, b pdf.Booklet,
	studentID *string, next func() (string, error)) (*ent.ExamCopy, error) {
	bl, err := blobRow(ctx, tx, ref, b.PageCount)
	if err != nil {
		return nil, err
	}
	anon, err := next()
	if err != nil {
		return nil, err
	}
	c, err := tx.ExamCopy.Create().SetExamID(ex.ID).SetAnonymousID(anon).SetStatus(examcopy.StatusSTAGING).
		SetPageCount(b.PageCount).SetShortBooklet(b.Short).SetSourceBlobID(bl.ID).
		SetNillableStudentID(studentID).Save(system(ctx))
	if err != nil {
		return nil, fmt.Errorf("create copy: %w", err)
	}
	return c, nil
}

// AnonymousPrefix is the exam part of its copies' anonymous ids: 4 hex digits
// derived from the exam id (ids are random, so it reveals nothing).
func AnonymousPrefix(examID string) string {
	h := sha256.Sum256([]byte(examID))
	return hex.EncodeToString(h[:2])
}

// withAnonymousIDs runs fn in a transaction with an allocator of fresh
// anonymous ids "<prefix>-<NNN>" for the exam: one more than the highest in
// use with that prefix (two exams may share a prefix). SQLite serializes
// writers (BEGIN IMMEDIATE), so the maximum cannot move under us; on
// PostgreSQL two concurrent allocations may pick the same number, the unique
// index refuses the second, and its transaction runs again.
func (s *Service) withAnonymousIDs(ctx context.Context, examID string, fn func(tx *ent.Tx, next func() (string, error)) error) error {
	var err error
	for range 8 {
		err = db.WithTx(ctx, s.cfg.DB.Client, func(tx *ent.Tx) error {
			alloc := &anonAllocator{ctx: ctx, tx: tx, prefix: AnonymousPrefix(examID), last: -1}
			return fn(tx, alloc.next)
		})
		if err == nil || !ent.IsConstraintError(err) {
			return err
		}
	}
	return err
}

type anonAllocator struct {
	ctx    context.Context
	tx     *ent.Tx
	prefix string
	last   int // -1: not read yet
}

func (a *anonAllocator) next() (string, error) {
	if a.last < 0 {
		used, err := a.tx.ExamCopy.Query().Where(examcopy.AnonymousIDHasPrefix(a.prefix + "-")).
			Select(examcopy.FieldAnonymousID).Strings(system(a.ctx))
		if err != nil {
			return "", fmt.Errorf("read anonymous ids: %w", err)
		}
		a.last = 0
		for _, id := range used {
			if n, err := strconv.Atoi(strings.TrimPrefix(id, a.prefix+"-")); err == nil && n > a.last {
				a.last = n
			}
		}
	}
	a.last++
	return fmt.Sprintf("%s-%03d", a.prefix, a.last), nil
}
