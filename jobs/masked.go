package jobs

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/blob"
	"github.com/korrigo/korrigo/storage"
)

// maskVersion changes when pdf.Mask changes what it removes, so files
// rendered by an older version are rendered again.
const maskVersion = "v1"

// maskedKey is the derived_key of a copy's masked pages.
func maskedKey(pagesPerBooklet int, sourceSHA string) string {
	return fmt.Sprintf("masked/%s/%d/%s", maskVersion, pagesPerBooklet, sourceSHA)
}

// derivedSource is the source blob's sha256 of a derived key ("" if none).
func derivedSource(key string) string {
	i := strings.LastIndexByte(key, '/')
	if i < 0 || !storage.ValidSHA256(key[i+1:]) {
		return ""
	}
	return key[i+1:]
}

var maskFlight singleflight.Group

// MaskedPages returns the blob of copy c's pages as correctors see them:
// the identity zone of every header page (index a multiple of the exam's
// pagesPerBooklet) removed by pdf.Mask in the PDF subprocess. The file is
// rendered once per source blob and booklet size and kept as a derived
// blob; concurrent requests in one process share one rendering, and two
// processes racing store the same row once (unique derived_key). The caller
// has authorized the read.
func (s *Service) MaskedPages(ctx context.Context, c *ent.ExamCopy) (*ent.Blob, error) {
	ctx = system(ctx)
	if c.SourceBlobID == nil {
		return nil, fmt.Errorf("copy %s has no pages", c.ID)
	}
	src, err := s.cfg.DB.Client.Blob.Get(ctx, *c.SourceBlobID)
	if err != nil {
		return nil, fmt.Errorf("read source blob: %w", err)
	}
	ex, err := s.cfg.DB.Client.Exam.Get(ctx, c.ExamID)
	if err != nil {
		return nil, fmt.Errorf("read exam: %w", err)
	}
	key := maskedKey(ex.PagesPerBooklet, src.Sha256)
	if b, err := s.derived(ctx, key); err != nil || b != nil {
		return b, err
	}
	v, err, _ := maskFlight.Do(key, func() (any, error) {
		if b, err := s.derived(ctx, key); err != nil || b != nil {
			return b, err
		}
		return s.renderMasked(ctx, src, ex.PagesPerBooklet, key)
	})
	if err != nil {
		return nil, err
	}
	return v.(*ent.Blob), nil
}

// derived is the stored blob of key, nil when there is none (or its file
// was lost: it is rendered again).
func (s *Service) derived(ctx context.Context, key string) (*ent.Blob, error) {
	b, err := s.cfg.DB.Client.Blob.Query().Where(blob.DerivedKey(key)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read derived blob: %w", err)
	}
	ok, err := s.cfg.Store.Exists(b.Sha256)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.log.Warn("derived blob file missing; rendering it again", zap.String("key", key))
		if err := s.cfg.DB.Client.Blob.DeleteOne(b).Exec(ctx); err != nil && !ent.IsNotFound(err) {
			return nil, fmt.Errorf("forget lost derived blob: %w", err)
		}
		return nil, nil
	}
	return b, nil
}

func (s *Service) renderMasked(ctx context.Context, src *ent.Blob, pagesPerBooklet int, key string) (*ent.Blob, error) {
	data, _, err := s.readBlob(ctx, src.ID)
	if err != nil {
		return nil, err
	}
	out, err := s.cfg.Runner.Mask(ctx, data, pagesPerBooklet)
	if err != nil {
		return nil, fmt.Errorf("mask pages: %w", err)
	}
	ref, err := s.put(ctx, out)
	if err != nil {
		return nil, err
	}
	var b *ent.Blob
	err = db.WithTx(ctx, s.cfg.DB.Client, func(tx *ent.Tx) error {
		existing, err := tx.Blob.Query().Where(blob.Or(blob.DerivedKey(key), blob.Sha256(ref.SHA256))).First(ctx)
		if err == nil {
			b = existing // another process stored it first (or the same bytes)
			return nil
		}
		if !ent.IsNotFound(err) {
			return err
		}
		b, err = tx.Blob.Create().SetSha256(ref.SHA256).SetSize(ref.Size).SetMediaType(mediaPDF).
			SetPages(src.Pages).SetDerivedKey(key).SetCreatedAt(now()).Save(ctx)
		return err
	})
	if ent.IsConstraintError(err) {
		b, err = s.derived(ctx, key)
		if err == nil && b == nil {
			err = fmt.Errorf("derived blob %s vanished", key)
		}
	}
	if err != nil {
		s.discard(ctx, ref)
		return nil, fmt.Errorf("record masked pages: %w", err)
	}
	return b, nil
}
