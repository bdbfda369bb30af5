package jobs_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/server/servertest"
)

// processEnv is where tests of real korrigo processes start: a fresh
// migrated PostgreSQL database (skipped without one), the korrigo binary, a
// data dir, and a serve env over them that runs no jobs itself. The processes
// get the database's URL and the same data dir.
type processEnv struct {
	env                 *servertest.Env
	bin, pgURL, dataDir string
}

func newProcessEnv(t *testing.T) processEnv {
	t.Helper()
	if dbtest.PostgresURL() == "" {
		t.Skip("KORRIGO_TEST_POSTGRES_URL is not set")
	}
	d, pgURL := dbtest.OpenURL(t, dialect.Postgres)
	dataDir := t.TempDir()
	return processEnv{
		env:     servertest.NewWithEnv(t, d, map[string]string{"KORRIGO_DATA_DIR": dataDir}),
		bin:     korrigoBinary(t),
		pgURL:   pgURL,
		dataDir: dataDir,
	}
}

// korrigoBinary builds cmd/korrigo into a temp dir.
func korrigoBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "korrigo")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/korrigo/korrigo/cmd/korrigo").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd *exec.Cmd
	out syncBuffer
}

// syncBuffer is the output of a child process, read while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startKorrigo(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

// TestWorkerProcessKilledMidJob: a real `korrigo worker` process takes a
// FINALIZE_COPY job, renders and stores the final PDF, and is killed
// (SIGKILL) before recording it (KORRIGO_TEST_BLOCK_JOB holds it there).
// `korrigo recover -workers-stopped` then closes the job, moves the copy to
// GRADING_FAILED and removes the unrecorded file; a new worker finalizes the
// copy again.
func TestWorkerProcessKilledMidJob(t *testing.T) {
	p := newProcessEnv(t)
	env, bin, pgURL, dataDir := p.env, p.bin, p.pgURL, p.dataDir
	g := gradedCopy(t, env)
	jobID := finalize(t, env, g)

	procEnv := []string{"KORRIGO_DATABASE_URL=" + pgURL, "KORRIGO_DATA_DIR=" + dataDir,
		"KORRIGO_ENV=development", "KORRIGO_WORKERS=1", "KORRIGO_LOG_LEVEL=warn"}
	w := startKorrigo(t, bin, append(procEnv, "KORRIGO_TEST_BLOCK_JOB=FINALIZE_COPY"), "worker")
	marker := filepath.Join(dataDir, "test-blocked-FINALIZE_COPY")
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if w.cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("worker never reached the job:\n%s", w.out.String())
		}
	}
	// The final PDF is stored and no row names it yet: killing now leaves an
	// orphan file, a running job and a copy GRADING_IN_PROGRESS.
	if n := len(storedFiles(t, env)); n != 2 {
		t.Fatalf("%d stored files before the kill, want the source and the unrecorded final PDF", n)
	}
	if err := w.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = w.cmd.Wait()
	if c := reload(t, env, g.copy); c.Status != examcopy.StatusGRADING_IN_PROGRESS {
		t.Fatalf("after the kill the copy is %s", c.Status)
	}

	r := startKorrigo(t, bin, procEnv, "recover", "-workers-stopped", "-temp-age", "0s")
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("korrigo recover: %v\n%s", err, r.out.String())
	}
	c := reload(t, env, g.copy)
	j := env.DB.Client.Job.GetX(env.Ctx(), jobID)
	if c.Status != examcopy.StatusGRADING_FAILED || c.GradingError == nil || j.State != "FAILED" || j.ActiveKey != nil {
		t.Fatalf("after recover: copy %s (%v), job %s\n%s", c.Status, c.GradingError, j.State, r.out.String())
	}
	noOrphans(t, env)
	if n := len(storedFiles(t, env)); n != 1 {
		t.Errorf("%d stored files after recover, want the source only", n)
	}
	if left, _ := os.ReadDir(filepath.Join(dataDir, "tmp")); len(left) != 0 {
		t.Errorf("PDF exchange dirs left: %v", left)
	}

	// A healthy worker comes back; the copy is finalized again.
	w2 := startKorrigo(t, bin, procEnv, "worker")
	relock(t, env, &g)
	if j := waitJob(t, env, finalize(t, env, g)); j.State != "SUCCEEDED" {
		t.Fatalf("finalize after recover: %+v\n%s", j, w2.out.String())
	}
	if c := reload(t, env, g.copy); c.Status != examcopy.StatusGRADED {
		t.Fatalf("copy %s", c.Status)
	}
	noOrphans(t, env)
	if strings.Contains(w2.out.String(), "panic") {
		t.Errorf("worker output:\n%s", w2.out.String())
	}
}
