package pdf

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Exit codes of Main. An operation that fails (a damaged PDF, say) still
// exits 0: the failure is in result.json. Any other exit means the child
// itself went wrong.
const (
	exitOK    = 0
	exitUsage = 64 // EX_USAGE
	exitSetup = 70 // EX_SOFTWARE: could not even start the operation
)

// opFunc performs one operation: it returns metadata to encode as JSON and
// output files, in order.
type opFunc func(j *childJob) (meta any, files [][]byte, err error)

// ops are the operations the child knows. Tests register extra ones.
var ops = map[string]opFunc{
	OpValidate: opValidate,
	OpSplit:    opSplit,
	OpImport:   opImport,
	OpBurn:     opBurn,
	OpSanitize: opSanitize,
	OpMask:     opMask,
}

// Main is the child side of Runner: the korrigo binary routes its "pdf"
// subcommand here, with the arguments that follow it (an operation and the
// exchange directory). It returns the process exit code.
func Main(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pdf <operation> <exchange-dir>")
		return exitUsage
	}
	op, dir := args[0], args[1]
	fn, ok := ops[op]
	if !ok {
		fmt.Fprintf(os.Stderr, "pdf: unknown operation %q\n", op)
		return exitUsage
	}
	if s := os.Getenv(envMemoryLimit); s != "" {
		limit, err := strconv.ParseInt(s, 10, 64)
		if err == nil {
			err = applyMemoryLimit(limit)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "pdf: memory limit: %v\n", err)
			return exitSetup
		}
	}
	res := run(fn, &childJob{dir: dir})
	if err := writeResult(dir, res); err != nil {
		fmt.Fprintf(os.Stderr, "pdf: %v\n", err)
		return exitSetup
	}
	return exitOK
}

func run(fn opFunc, j *childJob) childResult {
	meta, files, err := fn(j)
	if err != nil {
		return childResult{Error: toChildError(err)}
	}
	var res childResult
	if meta != nil {
		b, err := json.Marshal(meta)
		if err != nil {
			return childResult{Error: toChildError(fmt.Errorf("encode result: %w", err))}
		}
		res.Meta = b
	}
	for i, f := range files {
		name := fmt.Sprintf("out-%04d.pdf", i)
		if err := os.WriteFile(filepath.Join(j.dir, name), f, 0o600); err != nil {
			return childResult{Error: toChildError(fmt.Errorf("write output: %w", err))}
		}
		res.Files = append(res.Files, name)
	}
	return res
}

func toChildError(err error) *childError {
	ce := &childError{Message: err.Error()}
	if ipe, ok := asInvalid(err); ok {
		ce.Invalid = ipe
	}
	return ce
}

// writeResult writes result.json last and atomically: its presence tells
// the parent that the outputs it names are complete.
func writeResult(dir string, res childResult) error {
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	tmp := filepath.Join(dir, resultName+".part")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, resultName)); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// childJob gives an operation its request.
type childJob struct {
	dir string
}

func (j *childJob) params(v any) error {
	b, err := os.ReadFile(filepath.Join(j.dir, paramsName))
	if err != nil {
		return fmt.Errorf("read params: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode params: %w", err)
	}
	return nil
}

func (j *childJob) input() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(j.dir, inputName))
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	return b, nil
}

// progress reports to the parent over stdout, one line per call.
func (j *childJob) progress(done, total int) {
	fmt.Fprintf(os.Stdout, "%s%d %d\n", progressPrefix, done, total)
}

func opValidate(j *childJob) (any, [][]byte, error) {
	var p validateParams
	if err := j.params(&p); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(filepath.Join(j.dir, inputName))
	if err != nil {
		return nil, nil, fmt.Errorf("open input: %w", err)
	}
	defer f.Close()
	info, err := Validate(f, -1, p.MaxPages)
	if err != nil {
		return nil, nil, err
	}
	return info, nil, nil
}

func opSplit(j *childJob) (any, [][]byte, error) {
	var p splitParams
	if err := j.params(&p); err != nil {
		return nil, nil, err
	}
	in, err := j.input()
	if err != nil {
		return nil, nil, err
	}
	booklets, err := SplitScan(in, p.PagesPerBooklet, j.progress)
	if err != nil {
		return nil, nil, err
	}
	files := make([][]byte, len(booklets))
	for i, b := range booklets {
		files[i] = b.PDF
	}
	return booklets, files, nil
}

func opImport(j *childJob) (any, [][]byte, error) {
	in, err := j.input()
	if err != nil {
		return nil, nil, err
	}
	b, err := ImportCopy(in)
	if err != nil {
		return nil, nil, err
	}
	return b, [][]byte{b.PDF}, nil
}

func opBurn(j *childJob) (any, [][]byte, error) {
	var p burnParams
	if err := j.params(&p); err != nil {
		return nil, nil, err
	}
	in, err := j.input()
	if err != nil {
		return nil, nil, err
	}
	out, err := Burn(in, p.Marks, p.Summary)
	if err != nil {
		return nil, nil, err
	}
	return nil, [][]byte{out}, nil
}

func opSanitize(j *childJob) (any, [][]byte, error) {
	in, err := j.input()
	if err != nil {
		return nil, nil, err
	}
	out, err := Sanitize(in)
	if err != nil {
		return nil, nil, err
	}
	return nil, [][]byte{out}, nil
}

func opMask(j *childJob) (any, [][]byte, error) {
	var p maskParams
	if err := j.params(&p); err != nil {
		return nil, nil, err
	}
	in, err := j.input()
	if err != nil {
		return nil, nil, err
	}
	out, err := Mask(in, p.PagesPerBooklet)
	if err != nil {
		return nil, nil, err
	}
	return nil, [][]byte{out}, nil
}
