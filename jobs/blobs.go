package jobs

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/blob"
	"github.com/korrigo/korrigo/storage"
)

const mediaPDF = "application/pdf"

// put stores data in the blob store (temp file, fsync, rename).
func (s *Service) put(ctx context.Context, data []byte) (storage.Ref, error) {
	ref, err := s.cfg.Store.Put(ctx, bytes.NewReader(data), int64(max(len(data), 1)))
	if err != nil {
		return storage.Ref{}, fmt.Errorf("store blob: %w", err)
	}
	return ref, nil
}

// blobRow returns the Blob row of ref, creating it in tx when there is none
// (content addressing: the same bytes are one row and one file).
func blobRow(ctx context.Context, tx *ent.Tx, ref storage.Ref, pages int) (*ent.Blob, error) {
	return typedBlobRow(ctx, tx, ref, mediaPDF, pages)
}

// typedBlobRow is blobRow for any media type (exports: CSV, ZIP). The row is
// inserted with ON CONFLICT DO NOTHING and then read: two transactions storing
// the same new bytes at once (two uploads of one file, two jobs writing
// identical PDFs) then share one row instead of the second failing on the
// unique sha256 index.
func typedBlobRow(ctx context.Context, tx *ent.Tx, ref storage.Ref, mediaType string, pages int) (*ent.Blob, error) {
	err := tx.Blob.Create().SetSha256(ref.SHA256).SetSize(ref.Size).SetMediaType(mediaType).
		SetPages(pages).SetCreatedAt(now()).
		OnConflictColumns(blob.FieldSha256).DoNothing().
		Exec(system(ctx))
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("record blob %s: %w", ref.SHA256, err)
	}
	// Lock the row until tx ends: a collection (deleteUnreferencedBlob,
	// which deletes under the same lock) either waits and then sees the row
	// that names the blob, or committed first and the row is inserted again.
	for range 2 {
		n, err := tx.Blob.Update().Where(blob.Sha256(ref.SHA256)).AddPages(0).Save(system(ctx))
		if err != nil {
			return nil, fmt.Errorf("lock blob %s: %w", ref.SHA256, err)
		}
		if n == 1 {
			break
		}
		err = tx.Blob.Create().SetSha256(ref.SHA256).SetSize(ref.Size).SetMediaType(mediaType).
			SetPages(pages).SetCreatedAt(now()).Exec(system(ctx))
		if err != nil {
			return nil, fmt.Errorf("record blob %s again: %w", ref.SHA256, err)
		}
	}
	b, err := tx.Blob.Query().Where(blob.Sha256(ref.SHA256)).Only(system(ctx))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", ref.SHA256, err)
	}
	return b, nil
}

// discard removes stored files that no Blob row names: the leftovers of work
// that failed before (or while) its rows were committed. A file that a row
// names belongs to someone else (same content) and stays.
func (s *Service) discard(ctx context.Context, refs ...storage.Ref) {
	ctx = context.WithoutCancel(ctx)
	for _, ref := range refs {
		n, err := s.cfg.DB.Client.Blob.Query().Where(blob.Sha256(ref.SHA256)).Count(system(ctx))
		if err != nil {
			// Kept: the hourly collection removes files no row names after a day.
			s.log.Warn("orphan blob file kept: its rows could not be counted",
				zap.String("sha256", ref.SHA256), zap.Error(err))
			continue
		}
		if n > 0 {
			continue
		}
		if err := s.cfg.Store.Delete(ref.SHA256); err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.log.Warn("remove orphan blob file", zap.String("sha256", ref.SHA256), zap.Error(err))
		}
	}
}

// readBlob loads a stored blob.
func (s *Service) readBlob(ctx context.Context, blobID string) ([]byte, *ent.Blob, error) {
	b, err := s.cfg.DB.Client.Blob.Get(system(ctx), blobID)
	if err != nil {
		return nil, nil, fmt.Errorf("read blob row %s: %w", blobID, err)
	}
	f, err := s.cfg.Store.Open(b.Sha256)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("read blob %s: %w", b.Sha256, err)
	}
	return data, b, nil
}
