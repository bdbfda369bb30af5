package pdf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Typed front-ends of Runner.Run, one per operation of the child.

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

// Mask runs Mask in a child process: the copy with the identity zone of
// its header pages removed, for correctors.
func (r *Runner) Mask(ctx context.Context, in []byte, pagesPerBooklet int) ([]byte, error) {
	out, err := r.Run(ctx, OpMask, in, maskParams{PagesPerBooklet: pagesPerBooklet})
	if err != nil {
		return nil, err
	}
	return r.single(OpMask, out)
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

var errNoOutput = errors.New("child reported no output file")
