package pdf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Defaults for Runner's limits.
const (
	DefaultTimeout     = 60 * time.Second
	DefaultMemoryLimit = 1 << 30
)

// Runner runs PDF operations in a child process of the same binary, so that
// a file that makes pdfcpu panic, overflow its stack, loop or eat memory
// fails one job instead of the server. The zero value runs
// `<this executable> pdf <op> <dir>` with the default limits; the binary
// must route its "pdf" subcommand to Main. A Runner is safe for concurrent
// use.
type Runner struct {
	// Path is the executable to run; empty means os.Executable().
	Path string
	// Args come before "pdf <op> <dir>" on the child's command line.
	Args []string
	// Env is added to the parent's environment for the child.
	Env []string
	// Timeout bounds one operation (default DefaultTimeout); the child's
	// whole process group is killed when it expires.
	Timeout time.Duration
	// MemoryLimit bounds the child's memory in bytes (default
	// DefaultMemoryLimit): it becomes the child's GOMEMLIMIT, and on Linux
	// a hard address-space limit a little above it kills a child whose
	// live data outgrows it.
	MemoryLimit int64
	// TempDir is where per-operation exchange directories are created;
	// empty means os.TempDir(). Each is removed when the operation ends.
	TempDir string
	// Logger receives a warning with the child's stderr when it fails;
	// nil means no logging.
	Logger *zap.Logger
}

// Output is what a child operation returned.
type Output struct {
	Meta  json.RawMessage
	Files [][]byte
}

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

// Validate runs Validate in a child process.
func (r *Runner) Validate(ctx context.Context, in []byte, maxPages int) (Info, error) {
	out, err := r.Run(ctx, OpValidate, in, validateParams{MaxPages: maxPages})
	if err != nil {
		return Info{}, err
	}
	var info Info
	if err := json.Unmarshal(out.Meta, &info); err != nil {
		return Info{}, r.replyError(OpValidate, err)
	}
	return info, nil
}

// SplitScan runs SplitScan in a child process; progress is relayed.
func (r *Runner) SplitScan(ctx context.Context, in []byte, pagesPerBooklet int, progress func(done, total int)) ([]Booklet, error) {
	out, err := r.run(ctx, OpSplit, in, splitParams{PagesPerBooklet: pagesPerBooklet}, progress)
	if err != nil {
		return nil, err
	}
	var booklets []Booklet
	if err := json.Unmarshal(out.Meta, &booklets); err != nil {
		return nil, r.replyError(OpSplit, err)
	}
	if len(booklets) != len(out.Files) {
		return nil, r.replyError(OpSplit, fmt.Errorf("%d booklets but %d files", len(booklets), len(out.Files)))
	}
	for i := range booklets {
		booklets[i].PDF = out.Files[i]
	}
	return booklets, nil
}

// ImportCopy runs ImportCopy in a child process.
func (r *Runner) ImportCopy(ctx context.Context, in []byte) (Booklet, error) {
	out, err := r.Run(ctx, OpImport, in, nil)
	if err != nil {
		return Booklet{}, err
	}
	var b Booklet
	if err := json.Unmarshal(out.Meta, &b); err != nil {
		return Booklet{}, r.replyError(OpImport, err)
	}
	if b.PDF, err = r.single(OpImport, out); err != nil {
		return Booklet{}, err
	}
	return b, nil
}

// Burn runs Burn in a child process.
func (r *Runner) Burn(ctx context.Context, in []byte, marks []PageMarks, summary Summary) ([]byte, error) {
	out, err := r.Run(ctx, OpBurn, in, burnParams{Marks: marks, Summary: summary})
	if err != nil {
		return nil, err
	}
	return r.single(OpBurn, out)
}

// Sanitize runs Sanitize in a child process.
func (r *Runner) Sanitize(ctx context.Context, in []byte) ([]byte, error) {
	out, err := r.Run(ctx, OpSanitize, in, nil)
	if err != nil {
		return nil, err
	}
	return r.single(OpSanitize, out)
}

func (r *Runner) single(op string, out *Output) ([]byte, error) {
	if len(out.Files) != 1 {
		return nil, r.replyError(op, fmt.Errorf("%w (got %d)", errNoOutput, len(out.Files)))
	}
	return out.Files[0], nil
}

func (r *Runner) replyError(op string, err error) error {
	return &RunnerError{Op: op, Kind: RunnerFailed, Message: "PDF processing returned an unreadable result", Err: err}
}

// Run performs op on input in a child process, params being encoded as
// JSON. An operation's own failure comes back as an error with its message
// (an *InvalidPDFError for a refused file); a child that did not finish
// yields a *RunnerError.
func (r *Runner) Run(ctx context.Context, op string, input []byte, params any) (*Output, error) {
	return r.run(ctx, op, input, params, nil)
}

func (r *Runner) run(ctx context.Context, op string, input []byte, params any, progress func(done, total int)) (out *Output, err error) {
	dir, err := os.MkdirTemp(r.TempDir, "korrigo-pdf-")
	if err != nil {
		return nil, r.failed(op, "create exchange directory", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			out, err = nil, r.failed(op, "remove exchange directory", rerr)
		}
	}()
	if err := writeRequest(dir, input, params); err != nil {
		return nil, r.failed(op, "write request", err)
	}

	timeout := orDefault(r.Timeout, DefaultTimeout)
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := r.exec(runCtx, op, dir, progress)
	if err != nil {
		return nil, r.failed(op, "start child process", err)
	}
	switch {
	case res.waitErr == nil:
		// Finished, even if the deadline passed in the meantime.
		return r.readResult(op, dir, res.stderr)
	case ctx.Err() != nil:
		return nil, &RunnerError{Op: op, Kind: RunnerCanceled, Message: "PDF processing was canceled", Stderr: res.stderr, Err: ctx.Err()}
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return nil, r.logged(&RunnerError{Op: op, Kind: RunnerTimeout, Stderr: res.stderr, Err: runCtx.Err(),
			Message: fmt.Sprintf("PDF processing timed out after %s", timeout)})
	}
	return nil, r.logged(r.crashError(op, res))
}

type execResult struct {
	stderr  string // its start
	waitErr error
	maxRSS  int64 // peak resident memory, bytes
}

// exec runs the child to completion. Only a failure to start it is an
// error; how it ended is in the result.
func (r *Runner) exec(ctx context.Context, op, dir string, progress func(done, total int)) (execResult, error) {
	path := r.Path
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return execResult{}, err
		}
		path = exe
	}
	limit := orDefault(r.MemoryLimit, DefaultMemoryLimit)
	cmd := exec.CommandContext(ctx, path, append(slices.Clone(r.Args), "pdf", op, dir)...)
	cmd.Env = append(append(os.Environ(), r.Env...),
		"GOMEMLIMIT="+strconv.FormatInt(limit, 10),
		envMemoryLimit+"="+strconv.FormatInt(limit, 10),
		"TMPDIR="+filepath.Join(dir, tmpName),
	)
	// Its own process group, so that a timeout kills whatever it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Once the child is dead, do not wait long for pipes a straggler holds.
	cmd.WaitDelay = 2 * time.Second
	stderr := &headBuffer{max: 64 << 10}
	cmd.Stderr = stderr
	cmd.Stdout = &progressWriter{fn: progress}
	if err := cmd.Start(); err != nil {
		return execResult{}, err
	}
	res := execResult{waitErr: cmd.Wait(), stderr: stderr.String()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.maxRSS = ru.Maxrss << 10 // Linux reports kilobytes
	}
	return res, nil
}

func writeRequest(dir string, input []byte, params any) error {
	if err := os.Mkdir(filepath.Join(dir, tmpName), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, inputName), input, 0o600); err != nil {
		return err
	}
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, paramsName), p, 0o600)
}

func (r *Runner) readResult(op, dir, stderr string) (*Output, error) {
	b, err := os.ReadFile(filepath.Join(dir, resultName))
	if err != nil {
		return nil, r.logged(&RunnerError{Op: op, Kind: RunnerFailed, Stderr: stderr, Err: err,
			Message: "PDF processing ended without a result"})
	}
	var res childResult
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, r.replyError(op, err)
	}
	if res.Error != nil {
		if res.Error.Invalid != nil {
			return nil, res.Error.Invalid
		}
		return nil, fmt.Errorf("pdf %s: %s", op, res.Error.Message)
	}
	out := &Output{Meta: res.Meta, Files: make([][]byte, len(res.Files))}
	for i, name := range res.Files {
		// Names come from the child; never let one point outside dir.
		if name != filepath.Base(name) || name == resultName || name == inputName {
			return nil, r.replyError(op, fmt.Errorf("bad output name %q", name))
		}
		if out.Files[i], err = os.ReadFile(filepath.Join(dir, name)); err != nil {
			return nil, r.replyError(op, err)
		}
	}
	return out, nil
}

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

func (r *Runner) failed(op, what string, err error) *RunnerError {
	return r.logged(&RunnerError{Op: op, Kind: RunnerFailed, Err: err,
		Message: fmt.Sprintf("PDF processing could not run (%s: %v)", what, err)})
}

func (r *Runner) logged(e *RunnerError) *RunnerError {
	if r.Logger != nil {
		r.Logger.Warn("pdf child failed", zap.String("op", e.Op), zap.String("kind", e.Kind),
			zap.String("message", e.Message), zap.String("stderr", e.Stderr), zap.Error(e.Err))
	}
	return e
}

func orDefault[T int64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
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

// headBuffer keeps the first max bytes written to it: a Go crash states its
// cause first, then dumps every goroutine, which can be megabytes.
type headBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - h.buf.Len(); room > 0 {
		h.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.buf.String()
}

// progressWriter turns the child's progress lines into callbacks and
// discards anything else the child prints.
type progressWriter struct {
	fn   func(done, total int)
	line []byte
}

func (w *progressWriter) Write(p []byte) (int, error) {
	for _, c := range p {
		if c != '\n' {
			if len(w.line) < 256 { // a progress line is short; ignore floods
				w.line = append(w.line, c)
			}
			continue
		}
		w.emit(string(w.line))
		w.line = w.line[:0]
	}
	return len(p), nil
}

func (w *progressWriter) emit(line string) {
	rest, ok := strings.CutPrefix(line, progressPrefix)
	if !ok || w.fn == nil {
		return
	}
	var done, total int
	if _, err := fmt.Sscanf(rest, "%d %d", &done, &total); err == nil {
		w.fn(done, total)
	}
}
