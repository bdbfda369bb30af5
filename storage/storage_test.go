package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/korrigo/korrigo/storage"
)

// sha256("hello")
const helloSHA = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

func newStore(t *testing.T) *storage.FS {
	t.Helper()
	s, err := storage.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s *storage.FS, content string) storage.Ref {
	t.Helper()
	ref, err := s.Put(context.Background(), strings.NewReader(content), 1<<20)
	if err != nil {
		t.Fatalf("put %q: %v", content, err)
	}
	return ref
}

// files lists every regular file under the store, relative to its root.
func files(t *testing.T, s *storage.FS) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(s.Root(), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(s.Root(), p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertOnly(t *testing.T, s *storage.FS, want ...string) {
	t.Helper()
	got := files(t, s)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
}

func blobFile(sha string) string { return sha[:2] + "/" + sha[2:4] + "/" + sha }

func TestPutOpenRoundTrip(t *testing.T) {
	s := newStore(t)
	ref := put(t, s, "hello")
	if ref != (storage.Ref{SHA256: helloSHA, Size: 5}) {
		t.Fatalf("ref %+v", ref)
	}
	assertOnly(t, s, blobFile(helloSHA))

	f, err := s.Open(helloSHA)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(1, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(f); string(b) != "ello" {
		t.Fatalf("read %q", b)
	}

	p, err := s.Path(helloSHA)
	if err != nil || p != filepath.Join(s.Root(), "2c", "f2", helloSHA) {
		t.Fatalf("path %q, %v", p, err)
	}
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm()&0o222 != 0 {
		t.Fatalf("blob is writable: %v", info.Mode())
	}
	if ok, err := s.Exists(helloSHA); !ok || err != nil {
		t.Fatalf("exists %v, %v", ok, err)
	}
}

func TestPutEmpty(t *testing.T) {
	s := newStore(t)
	ref := put(t, s, "")
	want := sha256.Sum256(nil)
	if ref.SHA256 != hex.EncodeToString(want[:]) || ref.Size != 0 {
		t.Fatalf("ref %+v", ref)
	}
}

func TestPutDeduplicatesAndRefreshesModTime(t *testing.T) {
	s := newStore(t)
	put(t, s, "hello")
	p, _ := s.Path(helloSHA)
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}

	if ref := put(t, s, "hello"); ref.SHA256 != helloSHA {
		t.Fatalf("ref %+v", ref)
	}
	assertOnly(t, s, blobFile(helloSHA))
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, info) {
		t.Fatal("existing blob was replaced instead of reused")
	}
	if !info.ModTime().After(old) {
		t.Fatalf("mod time not refreshed: %v", info.ModTime())
	}
	// What the blob collector reads to spare a blob being reused.
	if mod, ok, err := s.ModTime(helloSHA); err != nil || !ok || !mod.Equal(info.ModTime()) {
		t.Fatalf("ModTime = %v, %v, %v; want %v, true, nil", mod, ok, err, info.ModTime())
	}
	absent := hex.EncodeToString(make([]byte, sha256.Size))
	if mod, ok, err := s.ModTime(absent); err != nil || ok || !mod.IsZero() {
		t.Fatalf("ModTime of an absent blob = %v, %v, %v", mod, ok, err)
	}
}

func TestPutReplacesDamagedBlob(t *testing.T) {
	s := newStore(t)
	put(t, s, "hello")
	p, _ := s.Path(helloSHA)
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("hel"), 0o600); err != nil {
		t.Fatal(err)
	}
	put(t, s, "hello")
	if b, _ := os.ReadFile(p); string(b) != "hello" {
		t.Fatalf("blob %q", b)
	}
}

func TestPutLimit(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()

	_, err := s.Put(ctx, strings.NewReader("hello!"), 5)
	if !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("want ErrTooLarge, got %v", err)
	}
	assertOnly(t, s)

	if ref, err := s.Put(ctx, strings.NewReader("hello"), 5); err != nil || ref.SHA256 != helloSHA {
		t.Fatalf("exactly at the limit: %+v, %v", ref, err)
	}

	for _, limit := range []int64{0, -1} {
		if _, err := s.Put(ctx, strings.NewReader("x"), limit); err == nil {
			t.Fatalf("limit %d accepted", limit)
		}
	}
}

// failingReader returns some data, then an error.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestPutReadErrorLeavesNothing(t *testing.T) {
	s := newStore(t)
	boom := errors.New("client went away")
	_, err := s.Put(context.Background(), &failingReader{data: bytes.Repeat([]byte("x"), 1<<20), err: boom}, 10<<20)
	if !errors.Is(err, boom) {
		t.Fatalf("want the reader's error, got %v", err)
	}
	assertOnly(t, s)
}

// cancellingReader cancels the context after its first chunk.
type cancellingReader struct {
	cancel context.CancelFunc
}

func (r cancellingReader) Read(p []byte) (int, error) {
	r.cancel()
	return len(p), nil
}

func TestPutCancelledLeavesNothing(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := s.Put(ctx, cancellingReader{cancel: cancel}, 1<<30)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	assertOnly(t, s)
}

func TestConcurrentPutSameContent(t *testing.T) {
	s := newStore(t)
	content := strings.Repeat("same scan ", 100_000) // ~1 MB: the writes overlap
	var wg sync.WaitGroup
	refs := make([]storage.Ref, 20)
	errs := make([]error, 20)
	for i := range 20 {
		wg.Go(func() {
			refs[i], errs[i] = s.Put(context.Background(), strings.NewReader(content), 2<<20)
		})
	}
	wg.Wait()
	for i := range 20 {
		if errs[i] != nil {
			t.Fatalf("put %d: %v", i, errs[i])
		}
		if refs[i] != refs[0] {
			t.Fatalf("put %d: %+v vs %+v", i, refs[i], refs[0])
		}
	}
	assertOnly(t, s, blobFile(refs[0].SHA256))
	f, err := s.Open(refs[0].SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b, _ := io.ReadAll(f); string(b) != content {
		t.Fatal("content differs")
	}
}

func TestConcurrentPutDifferentContent(t *testing.T) {
	s := newStore(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			// 20 distinct blobs whose ab/cd directories are created concurrently.
			if _, err := s.Put(context.Background(), strings.NewReader(strings.Repeat("x", i)), 100); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(files(t, s)); n != 20 {
		t.Fatalf("%d files, want 20", n)
	}
}

// sizeRecorder serves n bytes of a pattern and records the largest read.
type sizeRecorder struct {
	left    int64
	maxRead int
}

func (r *sizeRecorder) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	r.maxRead = max(r.maxRead, len(p))
	n := min(int64(len(p)), r.left)
	for i := range p[:n] {
		p[i] = byte(i)
	}
	r.left -= n
	return int(n), nil
}

func TestPutStreams(t *testing.T) {
	s := newStore(t)
	r := &sizeRecorder{left: 32 << 20}
	ref, err := s.Put(context.Background(), r, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Size != 32<<20 {
		t.Fatalf("size %d", ref.Size)
	}
	// Put never asks for more than its copy buffer, so memory stays flat
	// whatever the input size.
	if r.maxRead > 1<<20 {
		t.Fatalf("read %d bytes at once", r.maxRead)
	}
}

func TestPutFromFile(t *testing.T) {
	s := newStore(t)
	src := filepath.Join(t.TempDir(), "scan.pdf")
	data := bytes.Repeat([]byte("%PDF-1.7 page\n"), 400_000) // ~5.6 MB
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	ref, err := s.Put(context.Background(), f, 50<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if ref.SHA256 != hex.EncodeToString(want[:]) || ref.Size != int64(len(data)) {
		t.Fatalf("ref %+v", ref)
	}
}

func TestInvalidSHA(t *testing.T) {
	s := newStore(t)
	put(t, s, "hello")
	for _, sha := range []string{
		"",
		"../../../../etc/passwd",
		strings.ToUpper(helloSHA),
		helloSHA[:63],
		helloSHA + "0",
		"2c/f2/" + helloSHA[6:],
		strings.Repeat(".", 64),
		helloSHA[:62] + "g0",
	} {
		if _, err := s.Path(sha); !errors.Is(err, storage.ErrInvalidSHA) {
			t.Errorf("Path(%q): %v", sha, err)
		}
		if _, err := s.Open(sha); !errors.Is(err, storage.ErrInvalidSHA) {
			t.Errorf("Open(%q): %v", sha, err)
		}
		if _, err := s.Exists(sha); !errors.Is(err, storage.ErrInvalidSHA) {
			t.Errorf("Exists(%q): %v", sha, err)
		}
		if err := s.Delete(sha); !errors.Is(err, storage.ErrInvalidSHA) {
			t.Errorf("Delete(%q): %v", sha, err)
		}
	}
	assertOnly(t, s, blobFile(helloSHA))
}

func TestNotFoundAndDelete(t *testing.T) {
	s := newStore(t)
	if _, err := s.Open(helloSHA); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("open: %v", err)
	}
	if err := s.Delete(helloSHA); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("delete: %v", err)
	}
	if ok, err := s.Exists(helloSHA); ok || err != nil {
		t.Fatalf("exists: %v, %v", ok, err)
	}

	put(t, s, "hello")
	if err := s.Delete(helloSHA); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Exists(helloSHA); ok {
		t.Fatal("still exists")
	}
	put(t, s, "hello") // the kept empty directories take it back
	assertOnly(t, s, blobFile(helloSHA))
}

func TestList(t *testing.T) {
	s := newStore(t)
	var want []string
	for _, c := range []string{"a", "b", "c"} {
		want = append(want, put(t, s, c).SHA256)
	}
	// Things List must not report.
	writeFile(t, filepath.Join(s.Root(), ".tmp", "put-123"))
	writeFile(t, filepath.Join(s.Root(), "README"))
	writeFile(t, filepath.Join(s.Root(), "zz", "00", strings.Repeat("0", 64)))
	writeFile(t, filepath.Join(s.Root(), "2c", "f2", "not-a-blob"))
	writeFile(t, filepath.Join(s.Root(), "00", "00", helloSHA)) // wrong directory

	var got []string
	start := time.Now().Add(-time.Hour)
	err := s.List(context.Background(), func(sha string, mod time.Time) error {
		if mod.Before(start) {
			t.Errorf("%s: mod time %v", sha, mod)
		}
		got = append(got, sha)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}

	stop := errors.New("stop")
	calls := 0
	err = s.List(context.Background(), func(string, time.Time) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("fn error: %v after %d calls", err, calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.List(ctx, func(string, time.Time) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestCheckWritable(t *testing.T) {
	s := newStore(t)
	if err := s.CheckWritable(); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, s) // the probe is gone

	// A temp directory replaced by a file fails even for root, unlike chmod.
	tmp := filepath.Join(s.Root(), ".tmp")
	if err := os.Remove(tmp); err != nil {
		t.Fatal(err)
	}
	writeFile(t, tmp)
	if err := s.CheckWritable(); err == nil {
		t.Fatal("want an error")
	}
	if _, err := s.Put(context.Background(), strings.NewReader("x"), 10); err == nil {
		t.Fatal("put succeeded without a temp directory")
	}
}

func TestRemoveStaleTemp(t *testing.T) {
	s := newStore(t)
	stale := filepath.Join(s.Root(), ".tmp", "put-stale")
	fresh := filepath.Join(s.Root(), ".tmp", "put-fresh")
	writeFile(t, stale)
	writeFile(t, fresh)
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	n, err := s.RemoveStaleTemp(time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("removed %d, %v", n, err)
	}
	assertOnly(t, s, ".tmp/put-fresh")
}

func TestValidSHA256(t *testing.T) {
	if !storage.ValidSHA256(helloSHA) || storage.ValidSHA256(strings.ToUpper(helloSHA)) {
		t.Fatal("ValidSHA256")
	}
}

func writeFile(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
}
