package grading

import (
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/draft"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ids"
)

// Draft limits (DESIGN.md §7). Lengths are in bytes, as the schema's MaxLen counts.
const (
	MaxDraftBytes = 256 << 10
	MaxClientID   = 100
)

// insertDraft creates the caller's draft unless one exists. DO NOTHING rather
// than a unique violation: the first saves of two tabs can race, and the loser
// must get VERSION_CONFLICT, never an error.
const insertDraft = `INSERT INTO drafts (id, created_at, updated_at, client_id, payload, version, copy_id, owner_id)
VALUES (?, ?, ?, ?, ?, 1, ?, ?)
ON CONFLICT (copy_id, owner_id) DO NOTHING`

// moveDraft moves the caller's draft forward when the saving tab wrote it
// (same client id), and returns what the caller's answer needs. takeOverDraft
// also lets a tab whose baseVersion is the stored version take the draft over.
const (
	moveDraft = `UPDATE drafts SET client_id = ?, payload = ?, version = version + 1, updated_at = ?
WHERE copy_id = ? AND owner_id = ? AND client_id = ?
RETURNING id, created_at, version`
	takeOverDraft = `UPDATE drafts SET client_id = ?, payload = ?, version = version + 1, updated_at = ?
WHERE copy_id = ? AND owner_id = ? AND (client_id = ? OR version = ?)
RETURNING id, created_at, version`
)

// SaveDraft autosaves the caller's work on a copy; it needs no lease (typed work
// must never be lost). One draft per (copy, user): the tab that wrote it (same
// clientID) moves it to version+1; another tab gets VERSION_CONFLICT with the
// stored version, unless its baseVersion is that version (an explicit takeover:
// the draft becomes that tab's).
//
// The returned draft is built from what the transaction wrote, not read back
// (autosave is the desk's most frequent write: issue 8), so it is detached from
// any client: read its fields, do not query its edges.
func (s *Service) SaveDraft(ctx context.Context, copyID, clientID string, payload json.RawMessage, baseVersion *int) (*ent.Draft, error) {
	v, err := grader(ctx)
	if err != nil {
		return nil, err
	}
	if err := validateDraft(clientID, payload); err != nil {
		return nil, err
	}
	var d *ent.Draft
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		c, err := s.lockCopy(ctx, tx, v, copyID)
		if err != nil {
			return err
		}
		if c.Status == examcopy.StatusGRADED {
			return invalidStatus(c, "a graded copy takes no more drafts")
		}
		now := s.clock()
		d = &ent.Draft{CreatedAt: now, UpdatedAt: now, CopyID: c.ID, OwnerID: v.UserID, ClientID: clientID,
			Payload: payload, Version: 1}
		// The usual autosave moves the tab's own draft forward: one statement.
		query, args := moveDraft, []any{clientID, string(payload), now, c.ID, v.UserID, clientID}
		if baseVersion != nil {
			query, args = takeOverDraft, append(args, *baseVersion)
		}
		moved, err := s.scanDraft(ctx, tx, query, args, d)
		if err != nil || moved {
			return err
		}
		// No draft yet, or another tab's.
		d.ID = ids.New(ids.Draft)
		res, err := tx.ExecContext(ctx, s.rebind(insertDraft), d.ID, now, now, clientID, string(payload), c.ID, v.UserID)
		if err != nil {
			return fmt.Errorf("insert draft: %w", err)
		}
		created, err := res.RowsAffected()
		switch {
		case err != nil:
			return fmt.Errorf("insert draft: %w", err)
		case created == 1:
			return nil
		}
		cur, err := tx.Draft.Query().Where(draft.CopyID(c.ID), draft.OwnerID(v.UserID)).Only(system(ctx))
		if err != nil {
			return fmt.Errorf("read draft: %w", err)
		}
		return apperr.Conflict(cur.Version,
			"another tab saved this draft (version %d): reload it, or take it over with baseVersion", cur.Version)
	})
	if err != nil {
		return nil, fail(err, "save draft of copy %s", copyID)
	}
	return d, nil
}

// scanDraft runs one of the draft updates and fills d's stored fields from its
// RETURNING row; false when no draft was updated.
func (s *Service) scanDraft(ctx context.Context, tx *ent.Tx, query string, args []any, d *ent.Draft) (bool, error) {
	rows, err := tx.QueryContext(ctx, s.rebind(query), args...)
	if err != nil {
		return false, fmt.Errorf("update draft: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("update draft: %w", err)
		}
		return false, nil
	}
	if err := rows.Scan(&d.ID, &d.CreatedAt, &d.Version); err != nil {
		return false, fmt.Errorf("update draft: %w", err)
	}
	return true, rows.Close()
}

func validateDraft(clientID string, payload json.RawMessage) error {
	switch {
	case clientID == "" || len(clientID) > MaxClientID || !utf8.ValidString(clientID):
		return apperr.BadField("clientId", "clientId must be 1 to %d bytes of UTF-8", MaxClientID)
	case len(payload) > MaxDraftBytes:
		return apperr.New(apperr.PayloadTooLarge, "a draft is at most %d KiB", MaxDraftBytes>>10).
			With("limit", MaxDraftBytes)
	case !json.Valid(payload):
		return apperr.BadField("payload", "the draft payload must be JSON")
	}
	return nil
}

// DiscardDraft deletes the caller's draft of a copy and reports whether there was
// one.
func (s *Service) DiscardDraft(ctx context.Context, copyID string) (bool, error) {
	v, err := grader(ctx)
	if err != nil {
		return false, err
	}
	var n int
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		c, err := s.lockCopy(ctx, tx, v, copyID)
		if err != nil {
			return err
		}
		if c.Status == examcopy.StatusGRADED {
			return invalidStatus(c, "a graded copy is immutable")
		}
		n, err = tx.Draft.Delete().Where(draft.CopyID(c.ID), draft.OwnerID(v.UserID)).Exec(system(ctx))
		if err != nil {
			return fmt.Errorf("delete draft: %w", err)
		}
		return nil
	})
	if err != nil {
		return false, fail(err, "discard draft of copy %s", copyID)
	}
	return n > 0, nil
}

// MyDraft is the caller's draft of a copy, nil when there is none.
func (s *Service) MyDraft(ctx context.Context, copyID string) (*ent.Draft, error) {
	v, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.db.Client.Draft.Query().Where(draft.CopyID(copyID), draft.OwnerID(v.UserID)).Only(ctx)
	switch {
	case ent.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read draft of %s: %w", copyID, err)
	}
	return d, nil
}
