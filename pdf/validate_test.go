package pdf

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

const testdata = "../testdata"

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	return b
}

func TestValidateBadFilesMapToReasons(t *testing.T) {
	cases := map[string]string{
		"bad-empty.pdf":        ReasonEmpty,
		"bad-not-a-pdf.pdf":    ReasonNotPDF,
		"bad-truncated.pdf":    ReasonTruncated,
		"bad-garbage-body.pdf": ReasonUnparsable,
		"bad-encrypted.pdf":    ReasonEncrypted,
	}
	files, err := filepath.Glob(filepath.Join(testdata, "bad-*.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(cases) {
		t.Fatalf("testdata has %d bad-*.pdf files, test knows %d: update the table", len(files), len(cases))
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join(testdata, name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			_, err = Validate(f, st.Size(), 500)
			var ipe *InvalidPDFError
			if !errors.As(err, &ipe) {
				t.Fatalf("Validate: got %v (%T), want *InvalidPDFError", err, err)
			}
			if ipe.Reason != want {
				t.Fatalf("reason = %q, want %q (%v)", ipe.Reason, want, err)
			}
			if ipe.Message == "" {
				t.Fatal("empty human-readable message")
			}
		})
	}
}

func TestValidateGoodFiles(t *testing.T) {
	cases := []struct {
		name      string
		pages     int
		landscape bool
	}{
		{"class-a3-6students.pdf", 12, true},
		{"class-a3-odd-scan.pdf", 5, true},
		{"copy-a4-4p.pdf", 4, false},
		{"copy-a4-8p.pdf", 8, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := readTestdata(t, c.name)
			info, err := validateBytes(in, 500)
			if err != nil {
				t.Fatal(err)
			}
			if info.PageCount != c.pages || len(info.Pages) != c.pages {
				t.Fatalf("pages = %d/%d, want %d", info.PageCount, len(info.Pages), c.pages)
			}
			for i, p := range info.Pages {
				if p.Landscape() != c.landscape {
					t.Errorf("page %d: %+v landscape=%v, want %v", i+1, p, p.Landscape(), c.landscape)
				}
			}
		})
	}
}

func TestValidatePageLimits(t *testing.T) {
	in := readTestdata(t, "copy-a4-8p.pdf")
	_, err := validateBytes(in, 7)
	var ipe *InvalidPDFError
	if !errors.As(err, &ipe) || ipe.Reason != ReasonTooManyPages {
		t.Fatalf("got %v, want too_many_pages", err)
	}
	if _, err := validateBytes(in, 8); err != nil {
		t.Fatalf("8 pages with limit 8: %v", err)
	}
}

func TestValidateHonoursRotate(t *testing.T) {
	// An A3 sheet stored portrait but shown landscape through /Rotate 90 is
	// still an A3 scan.
	in := buildPDF(t, []testPage{{w: 842, h: 1190, rotate: 90}, {w: 595, h: 842, rotate: 270}})
	info, err := validateBytes(in, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p := info.Pages[0]; p.Width != 1190 || p.Height != 842 || p.Rotate != 90 || !p.Landscape() {
		t.Fatalf("page 1 = %+v, want 1190x842 landscape rotate 90", p)
	}
	if p := info.Pages[1]; p.Width != 842 || p.Height != 595 || !p.Landscape() {
		t.Fatalf("page 2 = %+v, want 842x595 shown landscape", p)
	}
}

func TestEncryptKeyIn(t *testing.T) {
	for s, want := range map[string]bool{
		"trailer <</Size 3/Encrypt 5 0 R>>": true,
		"<</Encrypt<</Filter/Standard>>>>":  true,
		"<</EncryptMetadata false>>":        false,
		"(the /Encrypt word)":               false,
	} {
		if got := encryptKeyIn([]byte(s), "/Encrypt"); got != want {
			t.Errorf("%q: got %v, want %v", s, got, want)
		}
	}
}

func TestValidateNoPages(t *testing.T) {
	_, err := validateBytes(buildPDF(t, nil), 500)
	var ipe *InvalidPDFError
	if !errors.As(err, &ipe) || ipe.Reason != ReasonNoPages {
		t.Fatalf("got %v, want no_pages", err)
	}
}
