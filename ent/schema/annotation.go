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

// Annotation is a mark drawn on a page: a normalized rectangle (origin top-left)
// with a kind, a text and optional points.
type Annotation struct{ ent.Schema }

func (Annotation) Mixin() []ent.Mixin { return []ent.Mixin{withID(ids.Annotation), timeMixin{}} }

func (Annotation) Fields() []ent.Field {
	return []ent.Field{
		refField("copy_id"),
		field.Int("page_index").NonNegative(),
		field.Float("x"),
		field.Float("y"),
		field.Float("w"),
		field.Float("h"),
		field.Enum("kind").Values("COMMENT", "HIGHLIGHT", "ERROR", "BONUS"),
		field.Text("text").Default("").MaxLen(4000),
		field.Float("points").Optional().Nillable(),
		refField("author_id"),
		field.Int("version").Default(1),
		field.Time("deleted_at").Optional().Nillable(),
	}
}

func (Annotation) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("copy", ExamCopy.Type).Field("copy_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade), entgql.Skip()),
		edge.To("author", User.Type).Field("author_id").Unique().Required(),
		edge.From("revisions", AnnotationRevision.Type).Ref("annotation"),
	}
}

func (Annotation) Indexes() []ent.Index {
	return []ent.Index{index.Fields("copy_id", "page_index")}
}

func (Annotation) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipWhereInput)}
}

// AnnotationRevision is an append-only snapshot of an annotation after each change.
type AnnotationRevision struct{ ent.Schema }

func (AnnotationRevision) Mixin() []ent.Mixin {
	return []ent.Mixin{withID(ids.AnnotationRevision)}
}

func (AnnotationRevision) Fields() []ent.Field {
	return []ent.Field{
		refField("annotation_id"),
		field.Int("version"),
		field.Enum("action").Values("CREATE", "UPDATE", "DELETE"),
		field.JSON("snapshot", json.RawMessage{}).Annotations(entgql.Type("JSON")),
		refField("author_id"),
		field.Time("at").Default(nowUTC).Immutable(),
	}
}

func (AnnotationRevision) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("annotation", Annotation.Type).Field("annotation_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade), entgql.Skip()),
		edge.To("author", User.Type).Field("author_id").Unique().Required(),
	}
}

func (AnnotationRevision) Indexes() []ent.Index {
	return []ent.Index{index.Fields("annotation_id", "version").Unique()}
}

func (AnnotationRevision) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipWhereInput)}
}

// QuestionScore is the points given to one leaf question of the scheme.
type QuestionScore struct{ ent.Schema }

func (QuestionScore) Mixin() []ent.Mixin { return []ent.Mixin{withID(ids.QuestionScore), timeMixin{}} }

func (QuestionScore) Fields() []ent.Field {
	return []ent.Field{
		refField("copy_id"),
		field.String("question_id").MaxLen(64).NotEmpty().Annotations(entgql.Skip()),
		field.Float("points"),
		field.Text("remark").Default("").MaxLen(2000),
		optionalRef("scored_by_id"),
	}
}

func (QuestionScore) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("copy", ExamCopy.Type).Field("copy_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade), entgql.Skip()),
		edge.To("scored_by", User.Type).Field("scored_by_id").Unique(),
	}
}

func (QuestionScore) Indexes() []ent.Index {
	return []ent.Index{index.Fields("copy_id", "question_id").Unique()}
}

func (QuestionScore) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipWhereInput)}
}

func (Annotation) Policy() ent.Policy { return rules.AnnotationPolicy() }

func (AnnotationRevision) Policy() ent.Policy { return rules.AnnotationRevisionPolicy() }

func (QuestionScore) Policy() ent.Policy { return rules.QuestionScorePolicy() }

func (AnnotationRevision) Hooks() []ent.Hook { return appendOnly() }
