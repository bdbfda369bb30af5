package pdf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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
	// Observe, when set, is told the operation and wall time of every child
	// process that ran, however it ended (metrics). It must not block.
	Observe func(op string, d time.Duration)
}

// Output is what a child operation returned.
type Output struct {
	Meta  json.RawMessage
	Files [][]byte
}

// Run performs op on input in a child process, params being encoded as
// JSON. An operation's own failure comes back as an error with its message
// (an *InvalidPDFError for a refused file); a child that did not finish
// yields a *RunnerError.
func (r *Runner) Run(ctx context.Context, op string, input []byte, params any) (*Output, error) {
	return r.run(ctx, op, input, params, nil)
}

func (r *Runner) run(ctx context.Context, op string, input []byte, params any, progress func(done, total int)) (out *Output, err error) {
	if err := ctx.Err(); err != nil {
		return nil, &RunnerError{Op: op, Kind: RunnerCanceled, Message: "PDF processing was canceled", Err: err}
	}
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
	start := time.Now()
	res, err := r.exec(runCtx, op, dir, progress)
	if err == nil && r.Observe != nil {
		r.Observe(op, time.Since(start))
	}
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
			return nil, fmt.Errorf("pdf %s: %w", op, res.Error.Invalid)
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
