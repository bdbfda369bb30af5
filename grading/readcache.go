package grading

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/exam"
	"github.com/korrigo/korrigo/ent/questionscore"
	"github.com/korrigo/korrigo/grading/scheme"
)

// Batch lists the copies the caller read together with the one asked about,
// all through the read rules: typically the page of a list. With a read cache
// in the context, the first of them to need its scores loads the scores of the
// whole batch in one statement, and the schemes of their exams in one more,
// instead of a few statements per copy. Nil: the copy alone.
type Batch func() []*ent.ExamCopy

// readChunk bounds the ids of one statement (far below the parameter limits of
// SQLite and PostgreSQL; a page holds at most 100 copies).
const readChunk = 500

// readCache holds the score sheets and marking schemes one read-only operation
// has loaded.
type readCache struct {
	// mu is held for writing while loading, so the resolvers of a page wait for
	// one load; afterwards the page's hundreds of lookups only share it.
	mu      sync.RWMutex
	sheets  map[string]*scoreSheet
	schemes map[string]examScheme // by exam id
}

// examScheme is an exam's scheme with its leaves, computed once for its copies.
type examScheme struct {
	scheme scheme.Scheme
	leaves []scheme.Leaf
}

func newExamScheme(sch scheme.Scheme) examScheme { return examScheme{sch, sch.Leaves()} }

type readCacheKey struct{}

// WithReadCache returns ctx carrying a cache of the scores and marking schemes
// read for the caller, for one read-only operation (a GraphQL query). Never use
// it around writes (a mutation, a subscription's successive events): the cache
// does not see them, so a read after a write in the same context would be stale.
func WithReadCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, readCacheKey{}, &readCache{
		sheets:  map[string]*scoreSheet{},
		schemes: map[string]examScheme{},
	})
}

func readCacheFrom(ctx context.Context) *readCache {
	rc, _ := ctx.Value(readCacheKey{}).(*readCache)
	return rc
}

// cachedSheet returns c's sheet from rc, loading on a miss the sheets of every
// copy of batch not loaded yet, c included.
//
// The scores are read with the caller's context, through the read rules, not on
// the server's behalf: whatever a batch holds, it can only load scores the
// caller may see. A copy the caller may not see gets an empty sheet.
func (s *Service) cachedSheet(ctx context.Context, rc *readCache, c *ent.ExamCopy, batch Batch) (scoreSheet, error) {
	rc.mu.RLock()
	sh, ok := rc.sheets[c.ID]
	rc.mu.RUnlock()
	if ok {
		return *sh, nil
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if sh, ok := rc.sheets[c.ID]; ok {
		return *sh, nil
	}
	todo := []*ent.ExamCopy{c}
	seen := map[string]bool{c.ID: true}
	if batch != nil {
		for _, o := range batch() {
			if o != nil && !seen[o.ID] && rc.sheets[o.ID] == nil {
				seen[o.ID] = true
				todo = append(todo, o)
			}
		}
	}
	if err := s.loadSchemes(ctx, rc, todo); err != nil {
		return scoreSheet{}, err
	}
	scores := make(map[string][]*ent.QuestionScore, len(todo))
	for part := range chunksOf(todo) {
		ids := make([]string, len(part))
		for i, o := range part {
			ids[i] = o.ID
		}
		qs, err := s.db.Client.QuestionScore.Query().Where(questionscore.CopyIDIn(ids...)).All(ctx)
		if err != nil {
			return scoreSheet{}, fmt.Errorf("read scores of %d copies: %w", len(ids), err)
		}
		for _, q := range qs {
			scores[q.CopyID] = append(scores[q.CopyID], q)
		}
	}
	for _, o := range todo {
		ex := rc.schemes[o.ExamID]
		sh := sheetOf(ex.scheme, ex.leaves, scores[o.ID])
		rc.sheets[o.ID] = &sh
	}
	return *rc.sheets[c.ID], nil
}

// loadSchemes reads the schemes of the exams of copies that rc lacks, in one
// statement, on the server's behalf: the caller read the copies, and a copy's
// total needs its exam's scheme whether or not the caller may read the exam.
func (s *Service) loadSchemes(ctx context.Context, rc *readCache, copies []*ent.ExamCopy) error {
	var missing []string
	for _, c := range copies {
		if _, ok := rc.schemes[c.ExamID]; ok || slices.Contains(missing, c.ExamID) {
			continue
		}
		if ex, err := c.Edges.ExamOrErr(); err == nil {
			rc.schemes[c.ExamID] = newExamScheme(ex.Scheme)
			continue
		}
		missing = append(missing, c.ExamID)
	}
	if len(missing) == 0 {
		return nil
	}
	exams, err := s.db.Client.Exam.Query().Where(exam.IDIn(missing...)).All(system(ctx))
	if err != nil {
		return fmt.Errorf("read the schemes of %d exams: %w", len(missing), err)
	}
	for _, ex := range exams {
		rc.schemes[ex.ID] = newExamScheme(ex.Scheme)
	}
	for _, id := range missing {
		if _, ok := rc.schemes[id]; !ok {
			return fmt.Errorf("read the scheme of exam %s: not found", id)
		}
	}
	return nil
}

// chunksOf yields copies in slices of at most readChunk.
func chunksOf(copies []*ent.ExamCopy) func(func([]*ent.ExamCopy) bool) {
	return func(yield func([]*ent.ExamCopy) bool) {
		for len(copies) > 0 {
			n := min(len(copies), readChunk)
			if !yield(copies[:n]) {
				return
			}
			copies = copies[n:]
		}
	}
}
