package server_test

import (
	"os"
	"testing"

	"github.com/korrigo/korrigo/pdf"
)

// The test binary doubles as the korrigo binary's `pdf` subcommand, so jobs
// started by these tests run their PDF work in a real child process.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "pdf" {
		os.Exit(pdf.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}
