package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// copyBufSize bounds Put's memory whatever the input size.
const copyBufSize = 256 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// Put stores the bytes of r, at most maxBytes of them, and returns their Ref.
// It streams: a 50 MB upload costs one 256 KiB buffer, not 50 MB of memory.
// On any error (read failure, ErrTooLarge, cancelled ctx, full disk) nothing
// is stored and the temp file is gone. If the content is already stored, the
// existing blob is kept and its modification time refreshed.
func (s *FS) Put(ctx context.Context, r io.Reader, maxBytes int64) (Ref, error) {
	if maxBytes <= 0 {
		return Ref{}, fmt.Errorf("storage: put: maxBytes must be positive, got %d", maxBytes)
	}
	if err := ctx.Err(); err != nil {
		return Ref{}, fmt.Errorf("storage: put: %w", err)
	}

	tmp, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return Ref{}, fmt.Errorf("storage: put: create temp file: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if tmp != nil {
			_ = tmp.Close()
		}
		if tmpName != "" {
			_ = os.Remove(tmpName) // no-op once renamed into place
		}
	}()

	sha, size, err := writeHashed(ctx, tmp, r, maxBytes)
	if err != nil {
		return Ref{}, err
	}
	// The bytes must be on disk before the rename publishes the name, or a
	// crash could leave a complete-looking blob with missing content.
	if err := tmp.Sync(); err != nil {
		return Ref{}, fmt.Errorf("storage: put: sync temp file: %w", err)
	}
	if err := tmp.Chmod(blobPerm); err != nil {
		return Ref{}, fmt.Errorf("storage: put: chmod temp file: %w", err)
	}
	err = tmp.Close()
	tmp = nil
	if err != nil {
		return Ref{}, fmt.Errorf("storage: put: close temp file: %w", err)
	}

	ref := Ref{SHA256: sha, Size: size}
	if s.reuse(ref) {
		return ref, nil
	}
	if err := s.publish(tmpName, sha); err != nil {
		return Ref{}, err
	}
	tmpName = ""
	return ref, nil
}

// writeHashed copies at most maxBytes from r into w while hashing them.
func writeHashed(ctx context.Context, w io.Writer, r io.Reader, maxBytes int64) (string, int64, error) {
	h := sha256.New()
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)

	// One byte past the limit tells "exactly maxBytes" from "more".
	src := io.LimitReader(ctxReader{ctx: ctx, r: r}, maxBytes+1)
	n, err := io.CopyBuffer(io.MultiWriter(w, h), src, *buf)
	if err != nil {
		return "", n, fmt.Errorf("storage: put: copy input: %w", err)
	}
	if n > maxBytes {
		return "", n, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxBytes)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// reuse reports whether the blob is already stored intact, refreshing its
// modification time so a collector with a grace period spares it.
func (s *FS) reuse(ref Ref) bool {
	p := s.path(ref.SHA256)
	info, err := os.Lstat(p)
	if err != nil || !info.Mode().IsRegular() || info.Size() != ref.Size {
		return false // absent, or damaged: let the rename replace it
	}
	now := time.Now()
	// Fails only if the blob was deleted meanwhile; then publish it again.
	return os.Chtimes(p, now, now) == nil
}

// publish renames the temp file to the blob's name and makes it durable.
// Two Puts of the same content may both get here; rename replaces the file
// atomically with identical bytes, so either order leaves one good blob.
func (s *FS) publish(tmpName, sha string) error {
	dir, err := s.makeDirs(sha)
	if err != nil {
		return err
	}
	if err := os.Rename(tmpName, filepath.Join(dir, sha)); err != nil {
		return fmt.Errorf("storage: put %s: rename into place: %w", sha, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("storage: put %s: sync directory: %w", sha, err)
	}
	return nil
}

// makeDirs creates root/ab/cd, fsyncing the parent of each directory it
// creates so the path to the blob survives a crash along with the blob.
func (s *FS) makeDirs(sha string) (string, error) {
	dir := s.root
	for _, part := range []string{sha[:2], sha[2:4]} {
		parent := dir
		dir = filepath.Join(dir, part)
		err := os.Mkdir(dir, dirPerm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("storage: put %s: create directory: %w", sha, err)
		}
		if err := syncDir(parent); err != nil {
			return "", fmt.Errorf("storage: put %s: sync directory: %w", sha, err)
		}
	}
	return dir, nil
}

// ctxReader stops a long copy when the request or job is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
