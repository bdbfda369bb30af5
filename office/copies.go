package office

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/korrigo/korrigo/apperr"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/copylock"
	"github.com/korrigo/korrigo/ent/exam"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/student"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/grading"
	"github.com/korrigo/korrigo/office/fold"
)

// identifiable are the statuses in which a copy's student may change: once a
// copy is being finalized or graded, its identity is settled.
var identifiable = []examcopy.Status{examcopy.StatusSTAGING, examcopy.StatusREADY}

// copyError explains why a compare-and-set on a copy matched no row.
func copyError(ctx context.Context, tx *ent.Tx, copyID, why string) error {
	c, err := tx.ExamCopy.Get(system(ctx), copyID)
	switch {
	case ent.IsNotFound(err):
		return apperr.NotFoundf("copy %s not found", copyID)
	case err != nil:
		return fmt.Errorf("read copy %s: %w", copyID, err)
	}
	return apperr.InvalidTransitionf("copy %s is %s: %s", c.ID, c.Status, why).With("status", string(c.Status))
}

// IdentifyCopy links a STAGING or READY copy to a student (admins). A STAGING
// copy becomes READY (DESIGN.md §5). A student has one copy per exam.
func (s *Service) IdentifyCopy(ctx context.Context, copyID, studentID string) (*ent.ExamCopy, error) {
	v, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	var (
		c    *ent.ExamCopy
		from examcopy.Status
	)
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		before, err := s.lockCopyRow(ctx, tx, copyID)
		if err != nil {
			return err
		}
		from = before.Status
		if !slices.Contains(identifiable, before.Status) {
			return copyError(ctx, tx, copyID, "only STAGING or READY copies can be identified")
		}
		// Locking the student's row serializes identifications of one student,
		// so the "one copy per exam" check below cannot race (PostgreSQL; SQLite
		// serializes writers anyway). NO KEY UPDATE: the copy's foreign key
		// only takes KEY SHARE on it.
		sq := tx.Student.Query().Where(student.ID(studentID))
		if s.db.Dialect == dialect.Postgres {
			sq.Modify(func(sel *sql.Selector) { sel.For(sql.LockNoKeyUpdate) })
		}
		if _, err := sq.Only(system(ctx)); err != nil {
			if ent.IsNotFound(err) {
				return apperr.NotFoundf("student %s not found", studentID)
			}
			return fmt.Errorf("read student %s: %w", studentID, err)
		}
		other, err := tx.ExamCopy.Query().Where(examcopy.ExamID(before.ExamID), examcopy.StudentID(studentID),
			examcopy.IDNEQ(copyID)).FirstID(system(ctx))
		switch {
		case err == nil:
			return apperr.BadField("studentId", "the student is already identified on copy %s of this exam", other)
		case !ent.IsNotFound(err):
			return fmt.Errorf("check identification: %w", err)
		}
		now := s.clock()
		n, err := tx.ExamCopy.Update().Where(examcopy.ID(copyID), examcopy.StatusIn(identifiable...)).
			SetStudentID(studentID).SetStatus(examcopy.StatusREADY).AddVersion(1).SetUpdatedAt(now).
			Save(system(ctx))
		if err != nil {
			return fmt.Errorf("identify copy %s: %w", copyID, err)
		}
		if n == 0 {
			return copyError(ctx, tx, copyID, "only STAGING or READY copies can be identified")
		}
		if c, err = tx.ExamCopy.Get(system(ctx), copyID); err != nil {
			return err
		}
		meta := map[string]any{"studentId": studentID, "version": c.Version}
		if before.StudentID != nil {
			meta["previousStudentId"] = *before.StudentID
		}
		if from != c.Status {
			meta["to"] = string(c.Status)
		}
		return event(ctx, tx, v, copyID, ActionIdentify, meta, now)
	})
	if err != nil {
		return nil, fail(err, "identify copy %s", copyID)
	}
	c = c.Unwrap()
	if from != c.Status && s.pub != nil {
		ev := grading.StatusEvent{ExamID: c.ExamID, CopyID: c.ID, From: from,
			Status: c.Status, CopyVersion: c.Version, ActorID: v.UserID, At: c.UpdatedAt}
		if c.AssignedCorrectorID != nil {
			ev.AssigneeID = *c.AssignedCorrectorID
		}
		s.pub.CopyStatusChanged(afterCommit(ctx), ev)
	}
	return c, nil
}

// UnidentifyCopy removes a STAGING or READY copy's student (admins).
func (s *Service) UnidentifyCopy(ctx context.Context, copyID string) (*ent.ExamCopy, error) {
	v, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	var c *ent.ExamCopy
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		before, err := s.lockCopyRow(ctx, tx, copyID)
		if err != nil {
			return err
		}
		if !slices.Contains(identifiable, before.Status) {
			return copyError(ctx, tx, copyID, "only STAGING or READY copies can be unidentified")
		}
		if before.StudentID == nil {
			c = before
			return nil // nothing to undo: idempotent
		}
		now := s.clock()
		n, err := tx.ExamCopy.Update().Where(examcopy.ID(copyID), examcopy.StatusIn(identifiable...)).
			ClearStudentID().AddVersion(1).SetUpdatedAt(now).Save(system(ctx))
		if err != nil {
			return fmt.Errorf("unidentify copy %s: %w", copyID, err)
		}
		if n == 0 {
			return copyError(ctx, tx, copyID, "only STAGING or READY copies can be unidentified")
		}
		if c, err = tx.ExamCopy.Get(system(ctx), copyID); err != nil {
			return err
		}
		return event(ctx, tx, v, copyID, ActionUnidentify,
			map[string]any{"previousStudentId": *before.StudentID, "version": c.Version}, now)
	})
	if err != nil {
		return nil, fail(err, "unidentify copy %s", copyID)
	}
	return c.Unwrap(), nil
}

// UnidentifiedCopies is the query of an exam's copies without a student, for
// the admins' identification screen.
func (s *Service) UnidentifiedCopies(ctx context.Context, examID string) (*ent.ExamCopyQuery, error) {
	if _, err := adminReader(ctx); err != nil {
		return nil, err
	}
	return s.db.Client.ExamCopy.Query().Where(examcopy.ExamID(examID), examcopy.StudentIDIsNil()), nil
}

// MaxSuggestions bounds suggestStudents.
const MaxSuggestions = 10

// SuggestStudents finds at most 10 students whose folded names contain every
// word of query, in one statement. Students already identified on another
// copy of the copy's exam come last.
func (s *Service) SuggestStudents(ctx context.Context, copyID, query string) ([]*ent.Student, error) {
	if _, err := adminReader(ctx); err != nil {
		return nil, err
	}
	words := strings.Fields(fold.Fold(query))
	if len(words) == 0 {
		return []*ent.Student{}, nil
	}
	if len(words) > 8 || len(query) > 200 {
		return nil, apperr.BadField("query", "the query is too long")
	}
	c, err := s.db.Client.ExamCopy.Get(system(ctx), copyID)
	switch {
	case ent.IsNotFound(err):
		return nil, apperr.NotFoundf("copy %s not found", copyID)
	case err != nil:
		return nil, fmt.Errorf("read copy %s: %w", copyID, err)
	}
	q := s.db.Client.Student.Query()
	for _, w := range words {
		q.Where(student.SearchKeyContains(w))
	}
	examID := c.ExamID
	return q.Modify(func(sel *sql.Selector) {
		// Taken = identified on another copy of this exam: ordered last. A
		// student has at most one copy per exam, so the join adds no rows.
		t := sql.Table(examcopy.Table).As("taken")
		sel.LeftJoin(t).OnP(sql.And(
			sql.ColumnsEQ(t.C(examcopy.FieldStudentID), sel.C(student.FieldID)),
			sql.EQ(t.C(examcopy.FieldExamID), examID),
			sql.NEQ(t.C(examcopy.FieldID), copyID),
		))
		sel.OrderExpr(sql.Expr(t.C(examcopy.FieldID) + " IS NOT NULL"))
		sel.OrderBy(sel.C(student.FieldLastName), sel.C(student.FieldFirstName), sel.C(student.FieldBirthDate))
		sel.Limit(MaxSuggestions)
	}).All(ctx)
}

// dispatchable copies: not assigned yet, not being finalized or graded.
var dispatchable = []examcopy.Status{examcopy.StatusSTAGING, examcopy.StatusREADY}

// DispatchCopies assigns every unassigned STAGING/READY copy of the exam
// round-robin over its active correctors taken in random order, so that the
// copies of this call differ by at most one between correctors. Each
// assignment is a compare-and-set (WHERE assigned_corrector_id IS NULL): two
// concurrent dispatches never assign a copy twice, the second finds the
// copies taken and skips them without breaking its own balance.
func (s *Service) DispatchCopies(ctx context.Context, examID string) (*DispatchReport, error) {
	v, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	report := &DispatchReport{}
	var published []grading.StatusEvent // after commit: one ASSIGNED event per copy
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		sctx := system(ctx)
		ex, err := liveExam(ctx, tx.Client(), examID)
		if err != nil {
			return err
		}
		correctors, err := tx.User.Query().
			Where(user.HasCorrectedExamsWith(exam.ID(examID)), user.Active(true)).
			Order(ent.Asc(user.FieldID)).All(sctx)
		if err != nil {
			return fmt.Errorf("read correctors: %w", err)
		}
		if len(correctors) == 0 {
			return apperr.BadField("examId", "the exam has no active corrector: set its correctors first")
		}
		rand.Shuffle(len(correctors), func(i, j int) { correctors[i], correctors[j] = correctors[j], correctors[i] })
		copyIDs, err := tx.ExamCopy.Query().
			Where(examcopy.ExamID(examID), examcopy.AssignedCorrectorIDIsNil(), examcopy.StatusIn(dispatchable...)).
			Order(ent.Asc(examcopy.FieldAnonymousID)).IDs(sctx)
		if err != nil {
			return fmt.Errorf("list copies to dispatch: %w", err)
		}
		now := s.clock()
		shares := make([]DispatchShare, len(correctors))
		var events []*ent.GradingEventCreate
		assignedTo := map[string]string{} // copy → corrector, for the realtime events
		next := 0
		for _, id := range copyIDs {
			to := correctors[next%len(correctors)]
			n, err := tx.ExamCopy.Update().
				Where(examcopy.ID(id), examcopy.AssignedCorrectorIDIsNil(), examcopy.StatusIn(dispatchable...)).
				SetAssignedCorrectorID(to.ID).AddVersion(1).SetUpdatedAt(now).Save(sctx)
			if err != nil {
				return fmt.Errorf("assign copy %s: %w", id, err)
			}
			if n == 0 {
				continue // taken by a concurrent dispatch or reassignment, or moved on
			}
			shares[next%len(correctors)].Assigned++
			next++
			assignedTo[id] = to.ID
			events = append(events, tx.GradingEvent.Create().SetCopyID(id).SetActorID(v.UserID).
				SetAction(ActionDispatch).SetMetadata(map[string]any{"correctorId": to.ID}).SetAt(now))
		}
		for start := 0; start < len(events); start += writeBatch {
			if err := tx.GradingEvent.CreateBulk(events[start:min(start+writeBatch, len(events))]...).Exec(sctx); err != nil {
				return fmt.Errorf("record dispatch events: %w", err)
			}
		}
		for i, u := range correctors {
			total, err := tx.ExamCopy.Query().Where(examcopy.ExamID(examID), examcopy.AssignedCorrectorID(u.ID)).Count(sctx)
			if err != nil {
				return fmt.Errorf("count assigned copies: %w", err)
			}
			shares[i].Corrector, shares[i].Total = u, total
		}
		report.Exam, report.Assigned, report.Distribution = ex, next, shares
		published = published[:0]
		ids := make([]string, 0, len(assignedTo))
		pos := make(map[string]int, len(assignedTo))
		for _, id := range copyIDs { // anonymous-id order
			if _, ok := assignedTo[id]; ok {
				pos[id] = len(ids)
				ids = append(ids, id)
			}
		}
		for start := 0; start < len(ids); start += writeBatch {
			done, err := tx.ExamCopy.Query().Where(examcopy.IDIn(ids[start:min(start+writeBatch, len(ids))]...)).
				Select(examcopy.FieldID, examcopy.FieldStatus, examcopy.FieldVersion).All(sctx)
			if err != nil {
				return fmt.Errorf("read dispatched copies: %w", err)
			}
			slices.SortFunc(done, func(a, b *ent.ExamCopy) int { return pos[a.ID] - pos[b.ID] })
			for _, c := range done {
				published = append(published, grading.StatusEvent{ExamID: examID, CopyID: c.ID, From: c.Status,
					Status: c.Status, CopyVersion: c.Version, ActorID: v.UserID, At: now, CorrectorID: assignedTo[c.ID], AssigneeID: assignedTo[c.ID]})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fail(err, "dispatch copies of %s", examID)
	}
	if s.pub != nil {
		for _, ev := range published {
			s.pub.CopyStatusChanged(afterCommit(ctx), ev)
		}
	}
	report.Exam = report.Exam.Unwrap()
	for i := range report.Distribution {
		report.Distribution[i].Corrector = report.Distribution[i].Corrector.Unwrap()
	}
	return report, nil
}

// ReassignCopy gives a copy to another corrector of its exam (admins). It is
// refused while someone other than the new corrector holds a live lease on it
// (LOCKED: an admin breaks the lease first), and once the copy is being
// finalized or graded.
func (s *Service) ReassignCopy(ctx context.Context, copyID, correctorID string) (*ent.ExamCopy, error) {
	v, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	var (
		c        *ent.ExamCopy
		previous string // the corrector the copy was taken from
		moved    bool
	)
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		sctx := system(ctx)
		before, err := s.lockCopyRow(ctx, tx, copyID)
		if err != nil {
			return err
		}
		switch before.Status {
		case examcopy.StatusGRADING_IN_PROGRESS, examcopy.StatusGRADED:
			return apperr.InvalidTransitionf("copy %s is %s: it can no longer be reassigned", copyID, before.Status).
				With("status", string(before.Status))
		}
		ok, err := tx.User.Query().Where(user.ID(correctorID), user.Active(true),
			user.HasCorrectedExamsWith(exam.ID(before.ExamID))).Exist(sctx)
		if err != nil {
			return fmt.Errorf("check corrector: %w", err)
		}
		if !ok {
			return apperr.BadField("correctorId", "the user is not an active corrector of this exam")
		}
		if before.AssignedCorrectorID != nil && *before.AssignedCorrectorID == correctorID {
			c = before
			return nil // already theirs: idempotent
		}
		now := s.clock()
		lease, err := tx.CopyLock.Query().Where(copylock.CopyID(copyID), copylock.ExpiresAtGT(now),
			copylock.OwnerIDNEQ(correctorID)).WithOwner().Only(sctx)
		switch {
		case err == nil:
			return apperr.LockedBy(apperr.LockOwner{ID: lease.OwnerID, Name: lease.Edges.Owner.Name}, lease.ExpiresAt)
		case !ent.IsNotFound(err):
			return fmt.Errorf("read lease: %w", err)
		}
		c, err = tx.ExamCopy.UpdateOneID(copyID).SetAssignedCorrectorID(correctorID).
			AddVersion(1).SetUpdatedAt(now).Save(sctx)
		if err != nil {
			return fmt.Errorf("reassign copy %s: %w", copyID, err)
		}
		meta := map[string]any{"correctorId": correctorID, "version": c.Version}
		if before.AssignedCorrectorID != nil {
			meta["previousCorrectorId"] = *before.AssignedCorrectorID
			previous = *before.AssignedCorrectorID
		}
		moved = true
		return event(ctx, tx, v, copyID, ActionReassign, meta, now)
	})
	if err != nil {
		return nil, fail(err, "reassign copy %s", copyID)
	}
	c = c.Unwrap()
	if moved && s.pub != nil {
		s.pub.CopyStatusChanged(afterCommit(ctx), grading.StatusEvent{ExamID: c.ExamID, CopyID: c.ID, From: c.Status,
			Status: c.Status, CopyVersion: c.Version, ActorID: v.UserID, At: c.UpdatedAt,
			CorrectorID: correctorID, PreviousCorrectorID: previous, AssigneeID: correctorID})
	}
	return c, nil
}
