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
	"github.com/korrigo/korrigo/ent/predicate"
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

// SaveDraft autosaves the caller's work on a copy; it needs no lease (typed work
// must never be lost). One draft per (copy, user): the tab that wrote it (same
// clientID) moves it to version+1; another tab gets VERSION_CONFLICT with the
// stored version, unless its baseVersion is that version (an explicit takeover:
// the draft becomes that tab's).
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
		mine := []predicate.Draft{draft.CopyID(c.ID), draft.OwnerID(v.UserID)}
		writer := draft.ClientID(clientID)
		if baseVersion != nil {
			writer = draft.Or(writer, draft.Version(*baseVersion))
		}
		// The usual autosave moves the tab's own draft forward: one statement.
		n, err := tx.Draft.Update().
			Where(append(mine, writer)...).
			SetClientID(clientID).
			SetPayload(payload).
			AddVersion(1).
			SetUpdatedAt(now).
			Save(system(ctx))
		if err != nil {
			return fmt.Errorf("update draft: %w", err)
		}
		if n == 0 { // no draft yet, or another tab's
			res, err := tx.ExecContext(ctx, s.rebind(insertDraft),
				ids.New(ids.Draft), now, now, clientID, string(payload), c.ID, v.UserID)
			if err != nil {
				return fmt.Errorf("insert draft: %w", err)
			}
			created, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("insert draft: %w", err)
			}
			if created == 0 {
				cur, err := tx.Draft.Query().Where(mine...).Only(system(ctx))
				if err != nil {
					return fmt.Errorf("read draft: %w", err)
				}
				return apperr.Conflict(cur.Version,
					"another tab saved this draft (version %d): reload it, or take it over with baseVersion", cur.Version)
			}
		}
		// Our write holds the row until commit: this is the version we wrote.
		d, err = tx.Draft.Query().Where(mine...).Only(system(ctx))
		if err != nil {
			return fmt.Errorf("read draft: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fail(err, "save draft of copy %s", copyID)
	}
	return d.Unwrap(), nil
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
