package pdf

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
)

// Kinds of RunnerError.
const (
	RunnerTimeout     = "timeout"
	RunnerCrashed     = "crashed"
	RunnerOutOfMemory = "out_of_memory"
	RunnerCanceled    = "canceled"
	RunnerFailed      = "failed" // could not start, or a reply we cannot read
)

// RunnerError reports that the child process did not complete an
// operation: it crashed, timed out, ran out of memory or could not run.
// Message is fit for a job's gradingError; Stderr (the start of the
// child's error output) is for logs.
type RunnerError struct {
	Op      string
	Kind    string
	Message string
	Stderr  string
	Err     error
}

func (e *RunnerError) Error() string { return e.Message }
func (e *RunnerError) Unwrap() error { return e.Err }

// crashError explains a child that exited abnormally, from the first line
// of a Go panic or fatal error on its stderr. When the address-space cap
// hits, the runtime usually reports "out of memory" but may also fault in
// its own bookkeeping; a crash after the child's resident memory passed the
// limit is therefore reported as running out of memory too.
func (r *Runner) crashError(op string, res execResult) *RunnerError {
	limit := orDefault(r.MemoryLimit, DefaultMemoryLimit)
	e := &RunnerError{Op: op, Kind: RunnerCrashed, Stderr: res.stderr, Err: res.waitErr}
	line := firstLine(res.stderr, "panic: ", "fatal error: ")
	switch {
	case strings.Contains(res.stderr, "out of memory") || res.maxRSS >= limit:
		e.Kind = RunnerOutOfMemory
		e.Message = fmt.Sprintf("PDF processing ran out of memory (limit %d MiB)", limit>>20)
	case line != "":
		e.Message = "PDF processing crashed: " + line
	default:
		var exitErr *exec.ExitError
		if errors.As(res.waitErr, &exitErr) {
			if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				e.Message = "PDF processing crashed: killed by signal " + ws.Signal().String()
				break
			}
		}
		e.Message = "PDF processing crashed: " + res.waitErr.Error()
		if last := lastLine(res.stderr); last != "" {
			e.Message += ": " + last
		}
	}
	return e
}

// firstLine returns the rest of the first line starting with one of
// prefixes, without the prefix.
func firstLine(s string, prefixes ...string) string {
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if rest, ok := strings.CutPrefix(l, p); ok {
				return strings.TrimSpace(rest)
			}
		}
	}
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
