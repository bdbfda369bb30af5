package office

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/job"
	"github.com/korrigo/korrigo/ids"
	"github.com/korrigo/korrigo/jobs"
	"github.com/korrigo/korrigo/storage"
)

// Export formats (GradeExportFormat in the API).
const (
	FormatPronote = "PRONOTE"
	FormatCSV     = "CSV"
	FormatPDFZip  = "PDF_ZIP"
)

// JobEnqueuer hands an export job to the job runner in the transaction that
// recorded it, and gives access to the blob store its files are kept in
// (jobs.Service implements it).
type JobEnqueuer interface {
	EnqueueExport(ctx context.Context, tx *ent.Tx, j *ent.Job) error
	Store() *storage.FS
}

// SetJobs sets the job runner of exports.
func (s *Service) SetJobs(j JobEnqueuer) { s.jobs = j }

// exportParams are the args column of an export job.
type exportParams struct {
	Format      string  `json:"format"`
	Coefficient float64 `json:"coefficient"`
}

// Media types of export files.
const (
	mediaCSV = "text/csv; charset=utf-8"
	mediaZIP = "application/zip"
)

// ExportGrades checks what would block the export now (so the admin gets the
// reason at once), then records and queues the job — EXPORT_GRADES for
// PRONOTE and CSV, EXPORT_PDFS for PDF_ZIP — and writes the audit entry of the
// request, in one transaction (admins). The job's file is stored as a blob and
// downloaded through Job.downloadUrl.
func (s *Service) ExportGrades(ctx context.Context, examID, format string, coefficient *float64) (*ent.Job, error) {
	v, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	p := exportParams{Format: format, Coefficient: 1}
	if coefficient != nil {
		p.Coefficient = *coefficient
	}
	kind := job.KindEXPORT_GRADES
	switch {
	case format != FormatPronote && format != FormatCSV && format != FormatPDFZip:
		return nil, apperr.BadField("format", "unknown format %q", format)
	case math.IsNaN(p.Coefficient) || p.Coefficient <= 0 || p.Coefficient > 100:
		return nil, apperr.BadField("coefficient", "the coefficient must be above 0 and at most 100")
	}
	if format == FormatPDFZip {
		kind = job.KindEXPORT_PDFS
	}
	if s.jobs == nil {
		return nil, fmt.Errorf("export grades: no job runner")
	}
	ex, err := liveExam(ctx, s.db.Client, examID)
	if err != nil {
		return nil, err
	}
	if kind == job.KindEXPORT_PDFS {
		if err := s.checkPDFExport(ctx, ex); err != nil {
			return nil, err
		}
	} else if _, _, err := s.gradeFile(ctx, ex, p); err != nil {
		return nil, err
	}
	args, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var j *ent.Job
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		now := s.clock()
		j, err = tx.Job.Create().SetID(ids.New(ids.Job)).SetKind(kind).SetState(job.StateQUEUED).
			SetExamID(examID).SetRequestedByID(v.UserID).SetArgs(args).SetCreatedAt(now).SetUpdatedAt(now).
			Save(system(ctx))
		if err != nil {
			return fmt.Errorf("record export job: %w", err)
		}
		if err := s.jobs.EnqueueExport(ctx, tx, j); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditExportRequested, examID, map[string]any{
			"jobId": j.ID, "kind": string(kind), "format": p.Format, "coefficient": p.Coefficient})
	})
	if err != nil {
		return nil, fail(err, "export grades of %s", examID)
	}
	return j.Unwrap(), nil
}

// exportJob reads the exam and parameters of an export job.
func (s *Service) exportJob(ctx context.Context, j *ent.Job) (*ent.Exam, exportParams, error) {
	var p exportParams
	if err := json.Unmarshal(j.Args, &p); err != nil || j.ExamID == nil {
		return nil, p, apperr.BadInputf("the export job has bad arguments")
	}
	ex, err := liveExam(ctx, s.db.Client, *j.ExamID)
	return ex, p, err
}

// WriteExport implements jobs.Exporter: it writes the file of an export job.
func (s *Service) WriteExport(ctx context.Context, j *ent.Job, w io.Writer, progress func(done, total int)) (*jobs.ExportFile, error) {
	ex, p, err := s.exportJob(ctx, j)
	if err != nil {
		return nil, err
	}
	if j.Kind == job.KindEXPORT_PDFS {
		return s.writePDFZip(ctx, ex, w, progress)
	}
	data, rows, err := s.gradeFile(ctx, ex, p)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	return &jobs.ExportFile{Filename: exportName(ex, strings.ToLower(p.Format), "csv"), MediaType: mediaCSV,
		Result: map[string]any{"format": p.Format, "rows": rows}}, nil
}

// ExportStored implements jobs.Exporter: the audit entry of a finished export
// (kind, exam, counts, file), in the transaction that ends the job, on behalf
// of the admin who asked for it.
func (s *Service) ExportStored(ctx context.Context, tx *ent.Tx, j *ent.Job, result map[string]any) error {
	meta := map[string]any{"jobId": j.ID, "kind": string(j.Kind)}
	for _, k := range []string{"format", "rows", "copies", "written", "failed", "filename", "size", "sha256"} {
		if v, ok := result[k]; ok {
			meta[k] = v
		}
	}
	target := ""
	if j.ExamID != nil {
		target = *j.ExamID
	}
	action := AuditGradesExported
	if j.Kind == job.KindEXPORT_PDFS {
		action = AuditPDFsExported
	}
	if j.RequestedByID != nil {
		ctx = viewer.NewContext(ctx, &viewer.Viewer{UserID: *j.RequestedByID, Role: viewer.RoleAdmin})
	}
	return s.auditTx(ctx, tx, action, target, meta)
}

// ExportExpired implements jobs.Exporter: the audit entry of an export whose
// file the sweep dropped after the retention (kind, exam, file, counts), in
// the transaction that drops it. The server acts: no actor.
func (s *Service) ExportExpired(ctx context.Context, tx *ent.Tx, j *ent.Job, meta map[string]any) error {
	entry := map[string]any{"jobId": j.ID, "kind": string(j.Kind)}
	for _, k := range []string{"format", "rows", "copies", "written", "failed", "filename", "size", "sha256", "expiredAt"} {
		if v, ok := meta[k]; ok {
			entry[k] = v
		}
	}
	if j.FinishedAt != nil {
		entry["finishedAt"] = j.FinishedAt.UTC().Format(time.RFC3339Nano)
	}
	target := ""
	if j.ExamID != nil {
		target = *j.ExamID
	}
	return s.auditTx(ctx, tx, AuditExportExpired, target, entry)
}

// gradeFile builds a grade file (PRONOTE or CSV) and its row count.
func (s *Service) gradeFile(ctx context.Context, ex *ent.Exam, p exportParams) ([]byte, int, error) {
	copies, err := s.db.Client.ExamCopy.Query().Where(examcopy.ExamID(ex.ID)).
		WithScores().WithStudent().Order(ent.Asc(examcopy.FieldAnonymousID)).All(system(ctx))
	if err != nil {
		return nil, 0, fmt.Errorf("read copies of %s: %w", ex.ID, err)
	}
	if p.Format == FormatPronote {
		return Pronote(ex, copies, p.Coefficient)
	}
	return ResultsCSV(ex, copies)
}

// exportName is "<exam name>-<date>-<what>.<ext>", safe as a file name.
func exportName(ex *ent.Exam, what, ext string) string {
	return fmt.Sprintf("%s-%s-%s.%s", strings.Trim(fileSafe.Replace(ex.Name), "_"), ex.Date, what, ext)
}

var fileSafe = strings.NewReplacer("/", "_", "\\", "_", " ", "_", "\"", "_", ";", "_", ":", "_")

// Pronote writes the PRONOTE import file: UTF-8 with BOM, ';', CRLF, one row
// per GRADED and identified copy ordered by name, the grade on /20 with two
// decimals rounded half-up and a decimal comma, the coefficient with one
// decimal, the appreciation on one line without a leading formula character
// and at most 500 characters. Nothing graded, or graded copies without a
// student, block the export (BAD_USER_INPUT naming them).
func Pronote(ex *ent.Exam, copies []*ent.ExamCopy, coefficient float64) ([]byte, int, error) {
	leaves, max := ex.Scheme.Leaves(), ex.Scheme.Max()
	var graded, anonymous []*ent.ExamCopy
	for _, c := range copies {
		if c.Status != examcopy.StatusGRADED {
			continue
		}
		graded = append(graded, c)
		if c.Edges.Student == nil {
			anonymous = append(anonymous, c)
		}
	}
	switch {
	case len(graded) == 0:
		return nil, 0, apperr.BadInputf("nothing to export: no copy of this exam is GRADED").With("blockers", []string{"NO_GRADED_COPY"})
	case len(anonymous) > 0:
		idsList := make([]string, len(anonymous))
		for i, c := range anonymous {
			idsList[i] = c.AnonymousID
		}
		return nil, 0, apperr.BadInputf("%d graded copies are not identified: %s", len(anonymous), strings.Join(idsList, ", ")).
			With("blockers", []string{"UNIDENTIFIED_GRADED_COPIES"}).With("copies", idsList)
	case max <= 0:
		return nil, 0, apperr.BadInputf("the exam has no marking scheme")
	}
	slices.SortFunc(graded, func(a, b *ent.ExamCopy) int {
		sa, sb := a.Edges.Student, b.Edges.Student
		return strings.Compare(sa.LastName+"\x00"+sa.FirstName+"\x00"+sa.BirthDate, sb.LastName+"\x00"+sb.FirstName+"\x00"+sb.BirthDate)
	})
	var buf bytes.Buffer
	buf.WriteString("\xEF\xBB\xBF")
	w := csv.NewWriter(&buf)
	w.Comma, w.UseCRLF = ';', true
	_ = w.Write([]string{"NOM", "PRENOM", "DATE_NAISSANCE", "MATIERE", "NOTE", "COEFF", "COMMENTAIRE"})
	subject := safeCell(strings.ToUpper(ex.Name), 200)
	coeff := strings.Replace(strconv.FormatFloat(halfUp(coefficient, 1), 'f', 1, 64), ".", ",", 1)
	for _, c := range graded {
		st := c.Edges.Student
		birth, _ := time.Parse(time.DateOnly, st.BirthDate)
		grade := halfUp(sheetOf(c, leaves, max).total/max*20, 2)
		_ = w.Write([]string{safeCell(st.LastName, 100), safeCell(st.FirstName, 100), birth.Format("02/01/2006"), subject,
			strings.Replace(strconv.FormatFloat(grade, 'f', 2, 64), ".", ",", 1), coeff, safeCell(c.Appreciation, 500)})
	}
	w.Flush()
	return buf.Bytes(), len(graded), w.Error()
}

// ResultsCSV is the plain results file: one row per copy (anonymous id,
// student, status, total, grade on /20, one column per question in scheme
// order), comma-separated with dot decimals; empty cells where nothing is
// known yet.
func ResultsCSV(ex *ent.Exam, copies []*ent.ExamCopy) ([]byte, int, error) {
	leaves, max := ex.Scheme.Leaves(), ex.Scheme.Max()
	var buf bytes.Buffer
	buf.WriteString("\xEF\xBB\xBF")
	w := csv.NewWriter(&buf)
	w.UseCRLF = true
	head := []string{"anonymous_id", "last_name", "first_name", "status", "total", "grade20"}
	for _, l := range leaves {
		head = append(head, safeCell(l.ID, 64))
	}
	_ = w.Write(head)
	num := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	for _, c := range copies {
		sh := sheetOf(c, leaves, max)
		row := []string{c.AnonymousID, "", "", string(c.Status), num(sh.total), ""}
		if st := c.Edges.Student; st != nil {
			row[1], row[2] = safeCell(st.LastName, 100), safeCell(st.FirstName, 100)
		}
		complete := len(leaves) > 0
		for _, l := range leaves {
			if q, ok := sh.scores[l.ID]; ok {
				row = append(row, num(q.Points))
			} else {
				row = append(row, "")
				complete = false
			}
		}
		if complete && max > 0 {
			row[5] = strconv.FormatFloat(halfUp(sh.total/max*20, 2), 'f', 2, 64)
		}
		_ = w.Write(row)
	}
	w.Flush()
	return buf.Bytes(), len(copies), w.Error()
}

// halfUp rounds x ≥ 0 to n decimals, halves up, forgiving the binary
// representation error of values like 15.125 or 1.005.
func halfUp(x float64, n int) float64 {
	p := math.Pow10(n)
	return math.Floor(x*p+0.5+1e-9) / p
}

// safeCell is a text cell for a spreadsheet: on one line, without the
// leading characters that make a formula (= + - @, also after spaces or
// tabs), at most max characters.
func safeCell(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.TrimLeft(s, "=+-@ \t")
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = strings.TrimRight(string(r[:max]), " ")
	}
	return s
}
