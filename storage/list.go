package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// List calls fn for every stored blob with its modification time, for a
// garbage collector. Order is unspecified. Files that are not blobs (temp
// files, strays) are skipped; blobs deleted during the walk may or may not be
// reported. An error from fn or a cancelled ctx stops the walk and is returned.
func (s *FS) List(ctx context.Context, fn func(sha string, modTime time.Time) error) error {
	level1, err := readDirNames(s.root)
	if err != nil {
		return fmt.Errorf("storage: list: %w", err)
	}
	for _, ab := range level1 {
		if !isHexPair(ab) {
			continue
		}
		level2, err := readDirNames(filepath.Join(s.root, ab))
		if err != nil {
			return fmt.Errorf("storage: list %s: %w", ab, err)
		}
		for _, cd := range level2 {
			if !isHexPair(cd) {
				continue
			}
			if err := s.listLeaf(ctx, ab, cd, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *FS) listLeaf(ctx context.Context, ab, cd string, fn func(string, time.Time) error) error {
	dir := filepath.Join(s.root, ab, cd)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("storage: list %s/%s: %w", ab, cd, err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("storage: list: %w", err)
		}
		sha := e.Name()
		if !ValidSHA256(sha) || sha[:2] != ab || sha[2:4] != cd {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since ReadDir
		}
		if err != nil {
			return fmt.Errorf("storage: list %s: %w", sha, err)
		}
		if !info.Mode().IsRegular() {
			continue
		}
		if err := fn(sha, info.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

// readDirNames lists subdirectory names only.
func readDirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func isHexPair(s string) bool {
	return len(s) == 2 && isLowerHex(s)
}
