package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

const (
	tmpDirName = ".tmp"
	dirPerm    = 0o750
	// Blobs are never modified in place; read-only modes make an accidental
	// write through Path fail instead of silently breaking the hash.
	blobPerm = 0o440
)

// FS is a blob store rooted in a local directory. Its methods are safe for
// concurrent use, also by several processes sharing the directory.
type FS struct {
	root string
	tmp  string
}

// New opens (creating it if needed) the blob store rooted at dir, normally
// $KORRIGO_DATA_DIR/blobs. Temp files live in dir/.tmp so that the final
// rename never crosses a filesystem boundary.
func New(dir string) (*FS, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: resolve %q: %w", dir, err)
	}
	s := &FS{root: root, tmp: filepath.Join(root, tmpDirName)}
	if err := os.MkdirAll(s.tmp, dirPerm); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", s.tmp, err)
	}
	return s, nil
}

// Root is the directory the store was opened on.
func (s *FS) Root() string { return s.root }

// Path returns where the blob lives (whether or not it exists), for callers
// that hand a file name to a subprocess. Treat the file as read-only.
func (s *FS) Path(sha string) (string, error) {
	if !ValidSHA256(sha) {
		return "", fmt.Errorf("%w: %q", ErrInvalidSHA, sha)
	}
	return s.path(sha), nil
}

func (s *FS) path(sha string) string {
	return filepath.Join(s.root, sha[:2], sha[2:4], sha)
}

// Open opens a blob for reading.
func (s *FS) Open(sha string) (io.ReadSeekCloser, error) {
	p, err := s.Path(sha)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, sha)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", sha, err)
	}
	return f, nil
}

// Exists reports whether the blob is stored.
func (s *FS) Exists(sha string) (bool, error) {
	_, ok, err := s.ModTime(sha)
	return ok, err
}

// ModTime is when the blob was last written or reused (Put refreshes the
// time of a blob it finds already stored); ok is false when it is not stored.
func (s *FS) ModTime(sha string) (mod time.Time, ok bool, err error) {
	p, err := s.Path(sha)
	if err != nil {
		return time.Time{}, false, err
	}
	info, err := os.Lstat(p)
	switch {
	case err == nil:
		return info.ModTime(), true, nil
	case errors.Is(err, fs.ErrNotExist):
		return time.Time{}, false, nil
	default:
		return time.Time{}, false, fmt.Errorf("storage: stat %s: %w", sha, err)
	}
}

// Delete removes a blob. Empty ab/cd directories stay: removing them would
// race with a Put that has just created them and is about to rename into one.
// The directory is not fsynced: after a crash a deleted blob may reappear,
// which the next collection undoes.
func (s *FS) Delete(sha string) error {
	p, err := s.Path(sha)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, sha)
	}
	if err != nil {
		return fmt.Errorf("storage: delete %s: %w", sha, err)
	}
	return nil
}

// CheckWritable creates, writes and removes a probe file where Put writes,
// for /readyz: it catches a read-only remount, lost permissions or a missing
// volume. It does not fsync, so it stays cheap enough to call often.
func (s *FS) CheckWritable() error {
	f, err := os.CreateTemp(s.tmp, "probe-*")
	if err != nil {
		return fmt.Errorf("storage: not writable: %w", err)
	}
	name := f.Name()
	_, werr := f.Write([]byte("ok"))
	cerr := f.Close()
	rerr := os.Remove(name)
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("storage: not writable: %w", err)
	}
	return nil
}

// RemoveStaleTemp deletes temp files older than olderThan, left behind when
// a process died in the middle of a Put; it returns how many it removed.
// Pick an age far above the longest upload, since other processes sharing
// the directory may be writing theirs.
func (s *FS) RemoveStaleTemp(olderThan time.Duration) (int, error) {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return 0, fmt.Errorf("storage: list temp files: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	var errs []error
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.ModTime().After(cutoff) {
			continue // vanished meanwhile, not ours, or still fresh
		}
		if err := os.Remove(filepath.Join(s.tmp, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("storage: remove temp files: %w", err)
	}
	return removed, nil
}

// syncDir makes a directory's entries (a rename, a new subdirectory) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
