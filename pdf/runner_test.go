package pdf

import (
	"github.com/korrigo/korrigo/pdf/pdftest"

	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Test-only operations, compiled into the test binary alone: the child
// side of these tests is this same binary (see TestMain).
func init() {
	ops["test-panic"] = func(*childJob) (any, [][]byte, error) {
		panic("boom: pdfcpu exploded")
	}
	ops["test-hang"] = func(j *childJob) (any, [][]byte, error) {
		var p hangParams
		if err := j.params(&p); err != nil {
			return nil, nil, err
		}
		pids := []string{strconv.Itoa(os.Getpid())}
		if p.Spawn {
			// A grandchild, standing for a helper pdfcpu might start: the
			// timeout must kill it too.
			cmd := exec.Command("sleep", "3600")
			if err := cmd.Start(); err != nil {
				return nil, nil, err
			}
			pids = append(pids, strconv.Itoa(cmd.Process.Pid))
		}
		if err := os.WriteFile(p.PIDFile, []byte(strings.Join(pids, " ")), 0o600); err != nil {
			return nil, nil, err
		}
		for {
			time.Sleep(time.Hour)
		}
	}
	ops["test-stack-overflow"] = func(*childJob) (any, [][]byte, error) {
		debug.SetMaxStack(8 << 20)
		return nil, nil, fmt.Errorf("unreachable: %d", recurse(1))
	}
	ops["test-alloc"] = func(j *childJob) (any, [][]byte, error) {
		var p struct{ MiB int }
		if err := j.params(&p); err != nil {
			return nil, nil, err
		}
		var keep [][]byte
		for range p.MiB {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
		return len(keep), nil, nil
	}
	ops["test-echo"] = func(j *childJob) (any, [][]byte, error) {
		in, err := j.input()
		if err != nil {
			return nil, nil, err
		}
		return len(in), [][]byte{in, in[:len(in)/2]}, nil
	}
	ops["test-fail"] = func(*childJob) (any, [][]byte, error) {
		return nil, nil, errors.New("no such question")
	}
}

type hangParams struct {
	PIDFile string
	Spawn   bool
}

func recurse(n int) int {
	var pad [256]byte
	pad[n%256] = byte(n)
	return recurse(n+1) + int(pad[0])
}

// testRunner runs this test binary as the child, with exchange directories
// under a directory the test can inspect.
func testRunner(t *testing.T) (*Runner, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	env := []string{envChild + "=1",
		// A race-enabled child otherwise sleeps a second before exiting.
		"GORACE=atexit_sleep_ms=0"}
	return &Runner{Path: exe, Env: env, TempDir: tmp}, tmp
}

func assertNoLeftovers(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind: %s", filepath.Join(dir, e.Name()))
	}
}

func TestRunnerSplitMatchesInProcess(t *testing.T) {
	r, tmp := testRunner(t)
	in := readTestdata(t, "class-a3-odd-scan.pdf")
	want, err := SplitScan(in, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	var calls [][2]int
	got, err := r.SplitScan(context.Background(), in, 4, func(d, n int) { calls = append(calls, [2]int{d, n}) })
	if err != nil {
		t.Fatal(err)
	}
	assertNoLeftovers(t, tmp)
	if len(got) != len(want) {
		t.Fatalf("%d booklets through the runner, %d in process", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.PageCount != w.PageCount || g.Short != w.Short || !reflect.DeepEqual(g.ScanPages, w.ScanPages) {
			t.Errorf("booklet %d: %+v vs %+v", i+1, g, w)
		}
		gp, wp := pdftest.Scan(t, g.PDF), pdftest.Scan(t, w.PDF)
		for p := range wp {
			if gp[p].VisibleText() != wp[p].VisibleText() || gp[p].Media != wp[p].Media {
				t.Errorf("booklet %d page %d differs", i+1, p+1)
			}
		}
	}
	// Per A4 page (10 pages in 3 booklets), relayed line by line.
	if fmt.Sprint(calls) != "[[0 10] [1 10] [2 10] [3 10] [4 10] [5 10] [6 10] [7 10] [8 10] [9 10] [10 10]]" {
		t.Errorf("progress relayed as %v", calls)
	}
}

func TestRunnerValidateImportBurnSanitize(t *testing.T) {
	r, tmp := testRunner(t)
	ctx := context.Background()
	in := readTestdata(t, "class-a3-6students.pdf")
	info, err := r.Validate(ctx, in, 500)
	if err != nil {
		t.Fatal(err)
	}
	local, _ := validateBytes(in, 500)
	if !reflect.DeepEqual(info, local) {
		t.Fatalf("runner %+v, in process %+v", info, local)
	}

	b, err := r.ImportCopy(ctx, readTestdata(t, "copy-a4-4p.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	assertBookletPages(t, b, 1, []int{1, 2, 3, 4})

	marks := []PageMarks{{PageIndex: 0, Marks: []Mark{{X: 0, Y: 0, W: 0.5, H: 0.5, Kind: KindError, Text: "Faux", Points: pts(-1)}}}}
	out, err := r.Burn(ctx, b.PDF, marks, sampleSummary())
	if err != nil {
		t.Fatal(err)
	}
	pages := pdftest.Scan(t, out)
	if len(pages) != 5 || !strings.Contains(pages[4].VisibleText(), "Note : 14,50 / 20") {
		t.Fatalf("burn through the runner: %d pages", len(pages))
	}

	clean, err := r.Sanitize(ctx, hostilePDF(t))
	if err != nil {
		t.Fatal(err)
	}
	assertClean(t, clean)
	assertNoLeftovers(t, tmp)
}

func TestRunnerInvalidPDFCrossesBoundary(t *testing.T) {
	r, tmp := testRunner(t)
	for name, reason := range map[string]string{
		"bad-truncated.pdf": ReasonTruncated,
		"bad-encrypted.pdf": ReasonEncrypted,
		"bad-not-a-pdf.pdf": ReasonNotPDF,
	} {
		_, err := r.Validate(context.Background(), readTestdata(t, name), 500)
		assertReason(t, err, reason)
		_, err = r.SplitScan(context.Background(), readTestdata(t, name), 4, nil)
		assertReason(t, err, reason)
	}
	_, err := r.Validate(context.Background(), readTestdata(t, "copy-a4-8p.pdf"), 4)
	assertReason(t, err, ReasonTooManyPages)
	if ipe, _ := asInvalid(err); !strings.Contains(ipe.Message, "8 pages") {
		t.Errorf("message lost its detail: %q", ipe.Message)
	}
	assertNoLeftovers(t, tmp)
}

func TestRunnerOperationErrorKeepsMessage(t *testing.T) {
	r, tmp := testRunner(t)
	_, err := r.Run(context.Background(), "test-fail", nil, nil)
	var re *RunnerError
	if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), "no such question") {
		t.Fatalf("got %v, want the operation's own error", err)
	}
	assertNoLeftovers(t, tmp)
}

func TestRunnerPanicIsCrash(t *testing.T) {
	r, tmp := testRunner(t)
	_, err := r.Run(context.Background(), "test-panic", []byte("x"), nil)
	re := asRunnerError(t, err, RunnerCrashed)
	if re.Message != "PDF processing crashed: boom: pdfcpu exploded" {
		t.Fatalf("message %q", re.Message)
	}
	assertNoLeftovers(t, tmp)
}

func TestRunnerStackOverflowIsCrash(t *testing.T) {
	r, tmp := testRunner(t)
	_, err := r.Run(context.Background(), "test-stack-overflow", nil, nil)
	re := asRunnerError(t, err, RunnerCrashed)
	if re.Message != "PDF processing crashed: stack overflow" {
		t.Fatalf("message %q", re.Message)
	}
	assertNoLeftovers(t, tmp)
}

func TestRunnerTimeoutKillsProcessGroup(t *testing.T) {
	r, tmp := testRunner(t)
	// The limit must leave the child (started under -race on a busy machine)
	// time to spawn its grandchild and write both pids before it fires.
	r.Timeout = 5 * time.Second
	pidFile := filepath.Join(t.TempDir(), "pids")
	_, err := r.Run(context.Background(), "test-hang", nil, hangParams{PIDFile: pidFile, Spawn: true})
	re := asRunnerError(t, err, RunnerTimeout)
	if re.Message != "PDF processing timed out after 5s" {
		t.Fatalf("message %q", re.Message)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("child never started: %v", err)
	}
	pids := strings.Fields(string(b))
	if len(pids) != 2 {
		t.Fatalf("pids %q", b)
	}
	for _, s := range pids {
		pid, _ := strconv.Atoi(s)
		// SIGKILL is delivered at once but dying takes a moment; the test's
		// own timeout bounds this wait.
		for alive(pid) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	assertNoLeftovers(t, tmp)
}

func TestRunnerCancel(t *testing.T) {
	r, tmp := testRunner(t)
	ctx, cancel := context.WithCancel(context.Background())
	pidFile := filepath.Join(t.TempDir(), "pids")
	go func() {
		for {
			if _, err := os.Stat(pidFile); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_, err := r.Run(ctx, "test-hang", nil, hangParams{PIDFile: pidFile})
	asRunnerError(t, err, RunnerCanceled)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v does not wrap context.Canceled", err)
	}
	assertNoLeftovers(t, tmp)
}

func TestRunnerMemoryLimit(t *testing.T) {
	r, tmp := testRunner(t)
	r.MemoryLimit = 64 << 20
	_, err := r.Run(context.Background(), "test-alloc", nil, map[string]int{"MiB": 4096})
	re := asRunnerError(t, err, RunnerOutOfMemory)
	if re.Message != "PDF processing ran out of memory (limit 64 MiB)" {
		t.Fatalf("message %q", re.Message)
	}
	// A modest allocation under the same limit is fine.
	if _, err := r.Run(context.Background(), "test-alloc", nil, map[string]int{"MiB": 16}); err != nil {
		t.Fatalf("16 MiB under a 64 MiB limit: %v\n%s", err, err.(*RunnerError).Stderr)
	}
	assertNoLeftovers(t, tmp)
}

func TestRunnerLargePayloads(t *testing.T) {
	r, tmp := testRunner(t)
	in := bytes.Repeat([]byte("0123456789abcdef"), 40<<20/16) // 40 MiB
	out, err := r.Run(context.Background(), "test-echo", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Meta) != strconv.Itoa(len(in)) || len(out.Files) != 2 ||
		!bytes.Equal(out.Files[0], in) || !bytes.Equal(out.Files[1], in[:len(in)/2]) {
		t.Fatalf("echo: meta %s, %d files", out.Meta, len(out.Files))
	}
	assertNoLeftovers(t, tmp)
}

func TestRunnerMissingExecutable(t *testing.T) {
	r, tmp := testRunner(t)
	r.Path = filepath.Join(t.TempDir(), "no-such-binary")
	_, err := r.Run(context.Background(), OpValidate, nil, nil)
	asRunnerError(t, err, RunnerFailed)
	assertNoLeftovers(t, tmp)
}

func asRunnerError(t *testing.T, err error, kind string) *RunnerError {
	t.Helper()
	var re *RunnerError
	if !errors.As(err, &re) {
		t.Fatalf("got %v (%T), want *RunnerError %s", err, err, kind)
	}
	if re.Kind != kind {
		t.Fatalf("kind %q, want %q: %v\nstderr: %.2000s", re.Kind, kind, re, re.Stderr)
	}
	return re
}

// alive reports whether pid is a running process; a zombie waiting for its
// new parent to reap it is dead.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Field 3, after "(comm)", is the state.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}
