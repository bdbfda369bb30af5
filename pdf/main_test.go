package pdf

import (
	"os"
	"testing"
)

// envChild makes the test binary act as the korrigo binary's "pdf"
// subcommand, so Runner tests exercise the real process boundary.
const envChild = "KORRIGO_PDF_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		// os.Args is [test-binary "pdf" op dir], as Runner builds it.
		os.Exit(Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}
