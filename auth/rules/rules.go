// Package rules holds the read authorization of every entity as ent privacy
// policies. They apply to every query the GraphQL layer runs, including node(id),
// nested edges and connections, so a resolver cannot forget a check: a teacher only
// sees copies assigned to them and never a student's identity; a student only sees
// their own graded copies of released exams.
//
// Writes are decided by the services (grading, auth, exams) before they touch the
// database; services that read on the server's own behalf use System.
package rules

import (
	"context"

	"entgo.io/ent/dialect/sql"

	"github.com/korrigo/korrigo/auth/viewer"
	"github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/annotation"
	"github.com/korrigo/korrigo/ent/annotationrevision"
	"github.com/korrigo/korrigo/ent/apitoken"
	"github.com/korrigo/korrigo/ent/copylock"
	"github.com/korrigo/korrigo/ent/draft"
	"github.com/korrigo/korrigo/ent/exam"
	"github.com/korrigo/korrigo/ent/examcopy"
	"github.com/korrigo/korrigo/ent/gradingevent"
	"github.com/korrigo/korrigo/ent/job"
	"github.com/korrigo/korrigo/ent/predicate"
	"github.com/korrigo/korrigo/ent/privacy"
	"github.com/korrigo/korrigo/ent/questionscore"
	"github.com/korrigo/korrigo/ent/session"
	"github.com/korrigo/korrigo/ent/student"
	"github.com/korrigo/korrigo/ent/user"
)

// System returns a context in which the privacy rules step aside: the server acts
// on its own behalf, after the service made its own authorization decision.
func System(ctx context.Context) context.Context {
	return privacy.DecisionContext(ctx, privacy.Allow)
}

// nothing matches no row; everything matches every row.
func nothing(s *sql.Selector)  { s.Where(sql.False()) }
func everything(*sql.Selector) {}

// VisibleExams is the set of exams v may read.
func VisibleExams(v *viewer.Viewer) predicate.Exam {
	switch {
	case v.IsAdmin():
		return everything // deleted exams included
	case v.IsTeacher():
		return exam.And(exam.DeletedAtIsNil(), exam.HasCorrectorsWith(user.ID(v.UserID)))
	case v.IsStudent():
		return exam.And(exam.DeletedAtIsNil(), exam.ResultsReleasedAtNotNil(),
			exam.HasCopiesWith(examcopy.HasStudentWith(student.UserID(v.UserID))))
	}
	return nothing
}

// VisibleCopies is the set of copies v may read.
func VisibleCopies(v *viewer.Viewer) predicate.ExamCopy {
	switch {
	case v.IsAdmin():
		return everything
	case v.IsTeacher():
		return examcopy.And(examcopy.AssignedCorrectorID(v.UserID),
			examcopy.HasExamWith(exam.DeletedAtIsNil()))
	case v.IsStudent():
		return examcopy.And(examcopy.StatusEQ(examcopy.StatusGRADED),
			examcopy.HasStudentWith(student.UserID(v.UserID)),
			examcopy.HasExamWith(exam.DeletedAtIsNil(), exam.ResultsReleasedAtNotNil()))
	}
	return nothing
}

// visibleExamCopies are copies of exams v corrects: teachers see who holds the
// other copies of their exams, not their content.
func visibleExamCopies(v *viewer.Viewer) predicate.ExamCopy {
	if v.IsTeacher() {
		return examcopy.HasExamWith(VisibleExams(v))
	}
	return VisibleCopies(v)
}

// filter builds a query rule: admins pass, anonymous callers are denied, everyone
// else gets the predicate.
func filter[Q interface{ Where(...P) Q }, P ~func(*sql.Selector)](pred func(v *viewer.Viewer) P) func(context.Context, Q) error {
	return func(ctx context.Context, q Q) error {
		v := viewer.FromContext(ctx)
		switch {
		case v == nil:
			return privacy.Denyf("anonymous query")
		case v.IsAdmin():
			return privacy.Allow
		}
		q.Where(pred(v))
		return privacy.Skip
	}
}

func policy(rule privacy.QueryRule) ent.Policy {
	return privacy.Policy{Query: privacy.QueryPolicy{rule}}
}

func UserPolicy() ent.Policy {
	return policy(privacy.UserQueryRuleFunc(filter[*ent.UserQuery](func(v *viewer.Viewer) predicate.User {
		if v.IsTeacher() { // colleagues' names appear on locks and in events
			return user.Or(user.ID(v.UserID), user.RoleIn(user.RoleADMIN, user.RoleTEACHER))
		}
		return user.ID(v.UserID)
	})))
}

func StudentPolicy() ent.Policy {
	return policy(privacy.StudentQueryRuleFunc(filter[*ent.StudentQuery](func(v *viewer.Viewer) predicate.Student {
		if v.IsStudent() {
			return student.UserID(v.UserID)
		}
		return nothing // teachers grade anonymously
	})))
}

func ExamPolicy() ent.Policy {
	return policy(privacy.ExamQueryRuleFunc(filter[*ent.ExamQuery](VisibleExams)))
}

func CopyPolicy() ent.Policy {
	return policy(privacy.ExamCopyQueryRuleFunc(filter[*ent.ExamCopyQuery](VisibleCopies)))
}

func CopyLockPolicy() ent.Policy {
	return policy(privacy.CopyLockQueryRuleFunc(filter[*ent.CopyLockQuery](func(v *viewer.Viewer) predicate.CopyLock {
		if v.IsStudent() {
			return nothing
		}
		return copylock.HasCopyWith(visibleExamCopies(v))
	})))
}

func DraftPolicy() ent.Policy {
	// A draft is personal, admins included.
	return privacy.Policy{Query: privacy.QueryPolicy{privacy.DraftQueryRuleFunc(func(ctx context.Context, q *ent.DraftQuery) error {
		v := viewer.FromContext(ctx)
		if v == nil {
			return privacy.Denyf("anonymous query")
		}
		q.Where(draft.OwnerID(v.UserID))
		return privacy.Skip
	})}}
}

func AnnotationPolicy() ent.Policy {
	return policy(privacy.AnnotationQueryRuleFunc(filter[*ent.AnnotationQuery](func(v *viewer.Viewer) predicate.Annotation {
		return annotation.HasCopyWith(VisibleCopies(v))
	})))
}

func AnnotationRevisionPolicy() ent.Policy {
	return policy(privacy.AnnotationRevisionQueryRuleFunc(filter[*ent.AnnotationRevisionQuery](func(v *viewer.Viewer) predicate.AnnotationRevision {
		if v.IsStudent() {
			return nothing
		}
		return annotationrevision.HasAnnotationWith(annotation.HasCopyWith(VisibleCopies(v)))
	})))
}

func QuestionScorePolicy() ent.Policy {
	return policy(privacy.QuestionScoreQueryRuleFunc(filter[*ent.QuestionScoreQuery](func(v *viewer.Viewer) predicate.QuestionScore {
		return questionscore.HasCopyWith(VisibleCopies(v))
	})))
}

func GradingEventPolicy() ent.Policy {
	return policy(privacy.GradingEventQueryRuleFunc(filter[*ent.GradingEventQuery](func(v *viewer.Viewer) predicate.GradingEvent {
		if v.IsStudent() {
			return nothing
		}
		return gradingevent.HasCopyWith(VisibleCopies(v))
	})))
}

func JobPolicy() ent.Policy {
	return policy(privacy.JobQueryRuleFunc(filter[*ent.JobQuery](func(v *viewer.Viewer) predicate.Job {
		return job.Or(job.RequestedByID(v.UserID), job.HasCopyWith(VisibleCopies(v)))
	})))
}

func APITokenPolicy() ent.Policy {
	return policy(privacy.ApiTokenQueryRuleFunc(filter[*ent.ApiTokenQuery](func(v *viewer.Viewer) predicate.ApiToken {
		return apitoken.OwnerID(v.UserID)
	})))
}

func SessionPolicy() ent.Policy {
	return policy(privacy.SessionQueryRuleFunc(filter[*ent.SessionQuery](func(v *viewer.Viewer) predicate.Session {
		return session.UserID(v.UserID)
	})))
}

// AdminOnlyPolicy is for audit logs and blobs: files are served through services
// that check the copy first.
func AdminOnlyPolicy() ent.Policy {
	return privacy.Policy{Query: privacy.QueryPolicy{privacy.QueryRuleFunc(func(ctx context.Context, _ ent.Query) error {
		if viewer.FromContext(ctx).IsAdmin() {
			return privacy.Allow
		}
		return privacy.Denyf("admin only")
	})}}
}
