package office

import (
	"strings"
	"testing"
	"time"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/grading/scheme"
)

func pts(x float64) *float64 { return &x }

func testExam() *ent.Exam {
	return &ent.Exam{ID: "exm_1", Name: "Bac blanc de maths", Date: "2026-11-20", Scheme: scheme.Scheme{
		{ID: "q1", Label: "Exercice 1", Points: pts(4)},
		{ID: "q2", Label: "Exercice 2", Children: []scheme.Node{{ID: "q2a", Label: "a", Points: pts(6)}}},
	}}
}

func gradedCopy(anon string, st *ent.Student, q1, q2a float64, appreciation string) *ent.ExamCopy {
	c := &ent.ExamCopy{ID: "cpy_" + anon, AnonymousID: anon, Status: examcopy.StatusGRADED, Appreciation: appreciation}
	c.Edges.Student = st
	c.Edges.Scores = []*ent.QuestionScore{{QuestionID: "q1", Points: q1}, {QuestionID: "q2a", Points: q2a}}
	return c
}

// The PRONOTE file byte for byte: BOM, ';', CRLF, header, rows by name, grade
// half-up with a decimal comma, coefficient with one decimal, upper-case
// subject, appreciation on one line without formula characters, ≤ 500 chars.
func TestPronoteBytes(t *testing.T) {
	ben := &ent.Student{LastName: "BEN ABDESSALEM", FirstName: "Élyes", BirthDate: "2005-11-02"}
	zoe := &ent.Student{LastName: "MARTIN", FirstName: "Zoé", BirthDate: "2004-02-29"}
	aby := &ent.Student{LastName: "ABADIE", FirstName: "Jean", BirthDate: "2005-01-09"}
	long := strings.Repeat("é", 600)
	copies := []*ent.ExamCopy{
		gradedCopy("a1b2-001", zoe, 3.5, 4.25, "=HYPERLINK(\"http://x\")\nTrès bien;\tcontinue"), // 7.75/10 → 15,50
		gradedCopy("a1b2-002", ben, 2, 2.1125, "+-@ Des efforts"),                                // 4.1125/10 → 8.225 → 8,23 (half-up)
		gradedCopy("a1b2-003", aby, 4, 6, long),                                                  // 20,00
		{ID: "cpy_4", AnonymousID: "a1b2-004", Status: examcopy.StatusREADY},                     // not graded: left out
	}
	got, rows, err := Pronote(testExam(), copies, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := "\xEF\xBB\xBF" +
		"NOM;PRENOM;DATE_NAISSANCE;MATIERE;NOTE;COEFF;COMMENTAIRE\r\n" +
		"ABADIE;Jean;09/01/2005;BAC BLANC DE MATHS;20,00;1,0;" + strings.Repeat("é", 500) + "\r\n" +
		"BEN ABDESSALEM;Élyes;02/11/2005;BAC BLANC DE MATHS;8,22;1,0;Des efforts\r\n" +
		"MARTIN;Zoé;29/02/2004;BAC BLANC DE MATHS;15,50;1,0;\"HYPERLINK(\"\"http://x\"\") Très bien; continue\"\r\n"
	if string(got) != want || rows != 3 {
		t.Fatalf("PRONOTE file:\n%q\nwant\n%q", got, want)
	}
	got, _, _ = Pronote(testExam(), copies[:1], 2.5)
	if !strings.Contains(string(got), ";15,50;2,5;") {
		t.Fatalf("coefficient: %q", got)
	}

	// Half-up on /20: 4.27/8 × 20 = 10.675 (10.674999… in binary) → 10,68.
	ex8 := testExam()
	ex8.Scheme[1].Children[0].Points = pts(4)
	got, _, _ = Pronote(ex8, []*ent.ExamCopy{gradedCopy("a1b2-005", zoe, 2, 2.27, "")}, 1)
	if !strings.Contains(string(got), ";10,68;1,0;") {
		t.Fatalf("half-up: %q", got)
	}

	// What blocks the export is named.
	_, _, err = Pronote(testExam(), copies[3:], 1)
	if !apperr.HasCode(err, apperr.BadUserInput) || !strings.Contains(err.Error(), "no copy") {
		t.Fatalf("nothing graded: %v", err)
	}
	anon := gradedCopy("a1b2-009", nil, 1, 1, "")
	_, _, err = Pronote(testExam(), append(copies, anon), 1)
	if !apperr.HasCode(err, apperr.BadUserInput) || !strings.Contains(err.Error(), "a1b2-009") {
		t.Fatalf("unidentified graded copy: %v", err)
	}
}

func TestResultsCSV(t *testing.T) {
	zoe := &ent.Student{LastName: "MARTIN", FirstName: "Zoé", BirthDate: "2004-02-29"}
	copies := []*ent.ExamCopy{
		gradedCopy("a1b2-001", zoe, 3.5, 4.25, ""),
		{ID: "cpy_2", AnonymousID: "a1b2-002", Status: examcopy.StatusREADY,
			Edges: ent.ExamCopyEdges{Scores: []*ent.QuestionScore{{QuestionID: "q1", Points: 1}}}},
	}
	got, rows, err := ResultsCSV(testExam(), copies)
	if err != nil {
		t.Fatal(err)
	}
	want := "\xEF\xBB\xBFanonymous_id,last_name,first_name,status,total,grade20,q1,q2a\r\n" +
		"a1b2-001,MARTIN,Zoé,GRADED,7.75,15.50,3.5,4.25\r\n" +
		"a1b2-002,,,READY,1,,1,\r\n"
	if string(got) != want || rows != 2 {
		t.Fatalf("results CSV:\n%q\nwant\n%q", got, want)
	}
}

func TestSplitNameAndDates(t *testing.T) {
	for in, want := range map[string]string{
		"BEN ABDESSALEM Élyes": "BEN ABDESSALEM|Élyes", "N'DIAYE Aïssatou": "N'DIAYE|Aïssatou",
		"LEFÈVRE-DURAND Maël": "LEFÈVRE-DURAND|Maël", "NGUYEN Thi Minh": "NGUYEN|Thi Minh",
		"DE LA FONTAINE Jean-Marc": "DE LA FONTAINE|Jean-Marc", "  DUPONT   Jean ": "DUPONT|Jean",
		"Dupont Jean": "", "DUPONT JEAN": "", "": "",
	} {
		last, first, reason := SplitName(in)
		got := last + "|" + first
		if reason != "" {
			got = ""
		}
		if got != want {
			t.Errorf("SplitName(%q) = %q (%s), want %q", in, got, reason, want)
		}
	}
	now := mustTime("2026-11-29")
	for in, want := range map[string]string{
		"29/02/2004": "2004-02-29", "29/02/2005": "", "31/04/2005": "", "1/2/2006": "2006-02-01",
		"2006-01-01": "", "15/03/1850": "", "01/01/2030": "", "15/3/05": "",
	} {
		if got, _ := parseBirthDate(in, now); got != want {
			t.Errorf("parseBirthDate(%q) = %q, want %q", in, got, want)
		}
	}
}

func mustTime(d string) time.Time {
	t, err := time.Parse(time.DateOnly, d)
	if err != nil {
		panic(err)
	}
	return t
}
