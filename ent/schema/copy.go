package schema

import (
	"github.com/korrigo/korrigo/auth/rules"

	"encoding/json"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/korrigo/korrigo/ids"
)

// ExamCopy is one student's booklet, graded anonymously. It is "Copy" in the API
// and the "copies" table; Go reserves the name copy for ent's package.
type ExamCopy struct{ ent.Schema }

func (ExamCopy) Mixin() []ent.Mixin { return []ent.Mixin{withID(ids.Copy), timeMixin{}} }

func (ExamCopy) Fields() []ent.Field {
	return []ent.Field{
		refField("exam_id"),
		// Shown as anonymousId in the hand-written SDL (the contract's spelling).
		field.String("anonymous_id").MaxLen(40).NotEmpty().Unique().Immutable().
			Annotations(entgql.Skip(entgql.SkipType), entgql.OrderField("ANONYMOUS_ID")),
		field.Enum("status").
			Values("STAGING", "READY", "GRADING_IN_PROGRESS", "GRADED", "GRADING_FAILED").
			Default("STAGING").
			Annotations(entgql.OrderField("STATUS"), entgql.Type("CopyStatus")),
		optionalRef("student_id"),
		optionalRef("assigned_corrector_id"),
		optionalRef("source_blob_id"),
		optionalRef("final_blob_id"),
		field.Int("page_count").NonNegative(),
		// Set when the split produced fewer pages than pages_per_booklet.
		field.Bool("short_booklet").Default(false),
		field.Text("appreciation").Default("").MaxLen(4000),
		field.Time("graded_at").Optional().Nillable(),
		field.String("grading_error").Optional().Nillable().MaxLen(2000),
		field.Int("finalize_attempts").Default(0).NonNegative(),
		// Bumped by every change of the copy row; events carry it so subscribers can
		// drop a delta older than their snapshot.
		field.Int("version").Default(1).Annotations(entgql.Skip(entgql.SkipWhereInput)),
	}
}

func (ExamCopy) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("exam", Exam.Type).Ref("copies").Field("exam_id").Unique().Required(),
		// Filtered by the Student privacy policy: null for everyone but admins.
		edge.To("student", Student.Type).Field("student_id").Unique().Annotations(hiddenWhere),
		edge.To("assigned_corrector", User.Type).Field("assigned_corrector_id").Unique(),
		edge.To("source_blob", Blob.Type).Field("source_blob_id").Unique().Annotations(entgql.Skip()),
		edge.To("final_blob", Blob.Type).Field("final_blob_id").Unique().Annotations(entgql.Skip()),
		edge.To("lock", CopyLock.Type).Unique().
			Annotations(entsql.OnDelete(entsql.Cascade), entgql.Skip()),
		edge.From("drafts", Draft.Type).Ref("copy").Annotations(entgql.Skip()),
		edge.From("annotations", Annotation.Type).Ref("copy").Annotations(entgql.Skip(entgql.SkipType)),
		edge.From("scores", QuestionScore.Type).Ref("copy").Annotations(entgql.Skip(entgql.SkipType)),
		edge.From("events", GradingEvent.Type).Ref("copy").
			Annotations(entgql.RelayConnection(), hiddenWhere),
		edge.From("jobs", Job.Type).Ref("copy").Annotations(entgql.Skip()),
	}
}

func (ExamCopy) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("exam_id", "status"),
		index.Fields("assigned_corrector_id", "status"),
		index.Fields("student_id", "exam_id"),
	}
}

func (ExamCopy) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entsql.Table("copies"),
		entgql.Type("Copy"),
		entgql.RelayConnection(),
		entgql.QueryField("copies"),
	}
}

// CopyLock is the grading lease on a copy; one row per copy at most. Expired rows
// are taken over by a compare-and-set upsert and swept periodically.
type CopyLock struct{ ent.Schema }

func (CopyLock) Mixin() []ent.Mixin { return []ent.Mixin{withID(ids.CopyLock)} }

func (CopyLock) Fields() []ent.Field {
	return []ent.Field{
		refField("copy_id"),
		refField("owner_id"),
		field.String("token").Sensitive().NotEmpty().Annotations(entgql.Skip()),
		field.Time("acquired_at").Default(nowUTC),
		field.Time("expires_at"),
	}
}

func (CopyLock) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("copy", ExamCopy.Type).Ref("lock").Field("copy_id").Unique().Required(),
		edge.To("owner", User.Type).Field("owner_id").Unique().Required(),
	}
}

func (CopyLock) Indexes() []ent.Index {
	return []ent.Index{index.Fields("expires_at")}
}

func (CopyLock) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipWhereInput)}
}

// Draft is a corrector's autosaved work on a copy, one per (copy, user).
type Draft struct{ ent.Schema }

func (Draft) Mixin() []ent.Mixin { return []ent.Mixin{withID(ids.Draft), timeMixin{}} }

func (Draft) Fields() []ent.Field {
	return []ent.Field{
		refField("copy_id"),
		refField("owner_id"),
		// The browser tab that wrote the last version (clientId in the SDL).
		field.String("client_id").MaxLen(100).NotEmpty().Annotations(entgql.Skip()),
		field.JSON("payload", json.RawMessage{}).Annotations(entgql.Skip()),
		field.Int("version").Default(1),
	}
}

func (Draft) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("copy", ExamCopy.Type).Field("copy_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade), entgql.Skip()),
		edge.To("owner", User.Type).Field("owner_id").Unique().Required().Annotations(entgql.Skip()),
	}
}

func (Draft) Indexes() []ent.Index {
	return []ent.Index{index.Fields("copy_id", "owner_id").Unique()}
}

func (Draft) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipWhereInput)}
}

func (ExamCopy) Policy() ent.Policy { return rules.CopyPolicy() }

func (CopyLock) Policy() ent.Policy { return rules.CopyLockPolicy() }

func (Draft) Policy() ent.Policy { return rules.DraftPolicy() }
