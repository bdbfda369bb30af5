// Package pdf wraps pdfcpu for Korrigo: it validates uploaded PDFs, cuts
// class scans into per-student A4 copies, rebuilds every copy from page
// content only (sanitising), and burns a corrector's marks plus a summary
// page into the final PDF.
//
// pdfcpu can panic, overflow its stack or loop forever on hostile input, so
// the server never calls these functions on user data directly: it goes
// through Runner, which executes them in a child process of the same binary
// (see Main) under a time and memory limit. The functions are still plain
// library calls over bytes, which keeps them easy to test and benchmark.
//
// The korrigo binary hands its "pdf" subcommand to Main before doing
// anything else (no config, database or logger: the child must start fast
// and touch nothing but its exchange directory):
//
//	if len(os.Args) > 1 && os.Args[1] == "pdf" {
//		os.Exit(pdf.Main(os.Args[2:]))
//	}
package pdf
