package office

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/student"
	"github.com/korrigo/korrigo/office/fold"
)

// Import limits: a district-sized class list fits, a runaway file does not.
const (
	MaxImportBytes = 5 << 20
	MaxImportRows  = 20000
	// writeBatch rows per INSERT: 7 columns × 500 stays far below the
	// parameter limits of SQLite (32766) and PostgreSQL (65535).
	writeBatch = 500
)

// Column keys (folded header names) of the school's export.
const (
	colName  = "name"
	colBirth = "birth"
	colEmail = "email"
	colClass = "class"
	colGroup = "group"
)

var headerAliases = map[string]string{
	"eleves": colName, "eleve": colName, "nom prenom": colName,
	"ne e le": colBirth, "ne le": colBirth, "nee le": colBirth, "date de naissance": colBirth,
	"adresse e mail": colEmail, "adresse email": colEmail, "e mail": colEmail, "email": colEmail, "courriel": colEmail,
	"classe": colClass,
	"groupe": colGroup,
}

// studentRow is a valid row of the file.
type studentRow struct {
	line                int
	last, first, birth  string
	email, class, group *string
}

type rowKey struct{ last, first, birth string }

// ImportStudents upserts the students of the school's CSV on (last name,
// first name, birth date): valid rows are written, every rejected row is
// reported with its line, column and reason.
// With createAccounts, students with an email and no account get a STUDENT
// account with a temporary password (see createAccounts).
func (s *Service) ImportStudents(ctx context.Context, data []byte, createAccounts bool) (*StudentImportReport, error) {
	v, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxImportBytes {
		return nil, apperr.BadField("file", "the file is larger than %d MB", MaxImportBytes>>20)
	}
	if createAccounts && s.accounts == nil {
		return nil, errors.New("import students: no account service")
	}
	rows, report, err := parseStudents(data, s.clock())
	if err != nil {
		return nil, err
	}
	start := time.Now()
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		if err := s.upsertStudents(ctx, tx, rows, report); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, AuditStudentsImported, "students", map[string]any{
			"created": report.Created, "updated": report.Updated, "unchanged": report.Unchanged,
			"rejected": len(report.Errors), "userId": v.UserID,
		})
	})
	if err != nil {
		return nil, fail(err, "import students")
	}
	s.log.Info("students imported", zap.Int("rows", len(rows)), zap.Int("created", report.Created),
		zap.Int("updated", report.Updated), zap.Int("rejected", len(report.Errors)), zap.Duration("took", time.Since(start)))
	if createAccounts {
		if err := s.createAccounts(ctx, rows, report); err != nil {
			return nil, fail(err, "create student accounts")
		}
	}
	return report, nil
}

// parseStudents reads and validates the file. A file that cannot be read as a
// class list at all (encoding, header) is BAD_USER_INPUT; bad rows are reported.
func parseStudents(data []byte, now time.Time) ([]studentRow, *StudentImportReport, error) {
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	if !utf8.Valid(data) {
		return nil, nil, apperr.BadField("file", "the file is not UTF-8: export it from the spreadsheet as “CSV UTF-8”")
	}
	header, _, _ := bytes.Cut(data, []byte("\n"))
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	if bytes.Count(header, []byte(";")) > bytes.Count(header, []byte(",")) {
		r.Comma = ';'
	}
	head, err := r.Read()
	if err != nil {
		return nil, nil, apperr.BadField("file", "the file has no header line")
	}
	cols := map[string]int{}
	names := map[string]string{}
	for i, h := range head {
		if key, ok := headerAliases[fold.Fold(h)]; ok {
			if _, dup := cols[key]; !dup {
				cols[key] = i
				names[key] = strings.TrimSpace(h)
			}
		}
	}
	var missing []string
	for key, want := range map[string]string{colName: "Élèves", colBirth: "Né(e) le", colClass: "Classe"} {
		if _, ok := cols[key]; !ok {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		return nil, nil, apperr.BadField("file", "the header lacks the column(s) %s", strings.Join(slices.Sorted(slices.Values(missing)), ", "))
	}
	label := func(key string) string {
		if n, ok := names[key]; ok {
			return n
		}
		return key
	}

	report := &StudentImportReport{Errors: []StudentImportError{}}
	var rows []studentRow
	seen := map[rowKey]int{}
	count := 0
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		count++
		if count > MaxImportRows {
			return nil, nil, apperr.BadField("file", "the file has more than %d rows", MaxImportRows)
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			report.Errors = append(report.Errors, StudentImportError{Line: pe.StartLine, Field: "file", Message: pe.Err.Error()})
			continue
		}
		if err != nil {
			return nil, nil, apperr.BadField("file", "unreadable CSV: %v", err)
		}
		line, _ := r.FieldPos(0)
		get := func(key string) string {
			if i, ok := cols[key]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		if strings.TrimSpace(strings.Join(rec, "")) == "" {
			report.Errors = append(report.Errors, StudentImportError{Line: line, Field: "file", Message: "empty row"})
			continue
		}
		bad := func(key, format string, args ...any) {
			report.Errors = append(report.Errors, StudentImportError{Line: line, Field: label(key), Message: fmt.Sprintf(format, args...)})
		}
		before := len(report.Errors)
		row := studentRow{line: line}
		var nerr string
		row.last, row.first, nerr = SplitName(get(colName))
		if nerr != "" {
			bad(colName, "%s", nerr)
		}
		if row.birth, nerr = parseBirthDate(get(colBirth), now); nerr != "" {
			bad(colBirth, "%s", nerr)
		}
		if e := get(colEmail); e != "" {
			addr, err := mail.ParseAddress(e)
			if err != nil || addr.Address != e || len(e) > 254 {
				bad(colEmail, "%q is not an email address", e)
			} else {
				e = strings.ToLower(e)
				row.email = &e
			}
		}
		switch c := get(colClass); {
		case c == "":
			bad(colClass, "the class is empty")
		case utf8.RuneCountInString(c) > 50:
			bad(colClass, "the class has more than 50 characters")
		default:
			row.class = &c
		}
		if g := get(colGroup); g != "" {
			if utf8.RuneCountInString(g) > 50 {
				bad(colGroup, "the group has more than 50 characters")
			} else {
				row.group = &g
			}
		}
		if len(report.Errors) > before {
			continue
		}
		k := rowKey{row.last, row.first, row.birth}
		if first, dup := seen[k]; dup {
			bad(colName, "the same student (name and birth date) is already on line %d", first)
			continue
		}
		seen[k] = line
		rows = append(rows, row)
	}
	return rows, report, nil
}

// SplitName cuts "NOM Prénom" into the last name (the leading run of words in
// capitals: "BEN ABDESSALEM Élyes", "N'DIAYE Aïssatou") and the first name.
// It returns a reason when the cell cannot be cut that way.
func SplitName(s string) (last, first, reason string) {
	words := strings.Fields(s)
	if len(words) == 0 {
		return "", "", "the name is empty"
	}
	i := 0
	for i < len(words) && upperWord(words[i]) {
		i++
	}
	switch {
	case i == 0:
		return "", "", fmt.Sprintf("%q does not start with a last name in capitals (NOM Prénom)", s)
	case i == len(words):
		return "", "", fmt.Sprintf("%q has no first name after the last name in capitals (NOM Prénom)", s)
	}
	last, first = strings.Join(words[:i], " "), strings.Join(words[i:], " ")
	if utf8.RuneCountInString(last) > 100 || utf8.RuneCountInString(first) > 100 {
		return "", "", "the last or first name has more than 100 characters"
	}
	return last, first, ""
}

// upperWord: at least one letter, and no lower-case letter.
func upperWord(w string) bool {
	letters := 0
	for _, r := range w {
		if unicode.IsLetter(r) {
			if unicode.IsLower(r) {
				return false
			}
			letters++
		}
	}
	return letters > 0
}

// parseBirthDate reads dd/mm/yyyy (one-digit day and month accepted) into
// YYYY-MM-DD, refusing dates that do not exist (31/04, 29/02 outside leap
// years) and implausible ones.
func parseBirthDate(s string, now time.Time) (string, string) {
	if s == "" {
		return "", "the birth date is empty"
	}
	t, err := time.Parse("2/1/2006", s)
	if err != nil || len(s) > 10 {
		return "", fmt.Sprintf("%q is not a date dd/mm/yyyy", s)
	}
	if t.Year() < 1900 || t.After(now) {
		return "", fmt.Sprintf("%q is not a plausible birth date", s)
	}
	return t.Format(time.DateOnly), ""
}

// upsertStudents writes the valid rows: one read per batch of last names to
// tell new students from known ones, batched inserts (an upsert, so a
// concurrent import of the same student updates instead of failing), and one
// UPDATE per changed student.
func (s *Service) upsertStudents(ctx context.Context, tx *ent.Tx, rows []studentRow, report *StudentImportReport) error {
	sctx := system(ctx)
	existing := map[rowKey]*ent.Student{}
	lastNames := map[string]bool{}
	for _, r := range rows {
		lastNames[r.last] = true
	}
	names := make([]string, 0, len(lastNames))
	for n := range lastNames {
		names = append(names, n)
	}
	for start := 0; start < len(names); start += writeBatch {
		batch := names[start:min(start+writeBatch, len(names))]
		found, err := tx.Student.Query().Where(student.LastNameIn(batch...)).All(sctx)
		if err != nil {
			return fmt.Errorf("read students: %w", err)
		}
		for _, st := range found {
			existing[rowKey{st.LastName, st.FirstName, st.BirthDate}] = st
		}
	}
	var creates []*ent.StudentCreate
	flush := func() error {
		if len(creates) == 0 {
			return nil
		}
		err := tx.Student.CreateBulk(creates...).
			OnConflictColumns(student.FieldLastName, student.FieldFirstName, student.FieldBirthDate).
			UpdateNewValues().Exec(sctx)
		creates = creates[:0]
		if err != nil {
			return fmt.Errorf("insert students: %w", err)
		}
		return nil
	}
	now := s.clock()
	for _, r := range rows {
		st, ok := existing[rowKey{r.last, r.first, r.birth}]
		if !ok {
			creates = append(creates, tx.Student.Create().
				SetLastName(r.last).SetFirstName(r.first).SetBirthDate(r.birth).
				SetNillableEmail(r.email).SetClassName(*r.class).SetNillableGroup(r.group).
				SetCreatedAt(now).SetUpdatedAt(now))
			report.Created++
			if len(creates) == writeBatch {
				if err := flush(); err != nil {
					return err
				}
			}
			continue
		}
		if eqPtr(st.Email, r.email) && st.ClassName == *r.class && eqPtr(st.Group, r.group) {
			report.Unchanged++
			continue
		}
		u := tx.Student.UpdateOneID(st.ID).SetClassName(*r.class).SetUpdatedAt(now)
		if r.email != nil {
			u.SetEmail(*r.email)
		} else {
			u.ClearEmail()
		}
		if r.group != nil {
			u.SetGroup(*r.group)
		} else {
			u.ClearGroup()
		}
		if err := u.Exec(sctx); err != nil {
			return fmt.Errorf("update student %s: %w", st.ID, err)
		}
		report.Updated++
	}
	return flush()
}

func eqPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}
