package schema

import (
	"github.com/korrigo/korrigo/auth/rules"

	"encoding/json"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/korrigo/korrigo/ids"
)

// Job is the durable, user-visible record of a background job (split, import,
// finalize, export). The job runner executes it; this row is what the API shows.
type Job struct{ ent.Schema }

func (Job) Mixin() []ent.Mixin { return []ent.Mixin{withID(ids.Job)} }

func (Job) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("kind").Values("SPLIT_SCAN", "IMPORT_COPY", "FINALIZE_COPY", "EXPORT_GRADES", "EXPORT_PDFS"),
		field.Enum("state").Values("QUEUED", "RUNNING", "RETRYING", "SUCCEEDED", "FAILED", "CANCELLED").
			Default("QUEUED"),
		field.Int("progress_done").Default(0).Annotations(entgql.Skip()),
		field.Int("progress_total").Default(0).Annotations(entgql.Skip()),
		field.Int("attempts").Default(0),
		field.String("error").Optional().Nillable().MaxLen(2000),
		field.JSON("result", json.RawMessage{}).Optional().Annotations(entgql.Type("JSON")),
		// Parameters for the worker (not shown: may reference internal blobs).
		field.JSON("args", json.RawMessage{}).Optional().Annotations(entgql.Skip()),
		optionalRef("exam_id"),
		optionalRef("copy_id"),
		optionalRef("requested_by_id"),
		// At most one active job per key (e.g. one finalization per copy).
		field.String("active_key").Optional().Nillable().Unique().MaxLen(120).Annotations(entgql.Skip()),
		field.Int64("river_job_id").Optional().Nillable().Annotations(entgql.Skip()),
		field.Time("created_at").Default(nowUTC).Immutable(),
		field.Time("started_at").Optional().Nillable(),
		field.Time("finished_at").Optional().Nillable(),
		field.Time("updated_at").Default(nowUTC).UpdateDefault(nowUTC),
	}
}

func (Job) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("exam", Exam.Type).Ref("jobs").Field("exam_id").Unique(),
		edge.To("copy", ExamCopy.Type).Field("copy_id").Unique().Annotations(entgql.Skip()),
		edge.To("requested_by", User.Type).Field("requested_by_id").Unique().Annotations(entgql.Skip()),
	}
}

func (Job) Indexes() []ent.Index {
	return []ent.Index{index.Fields("copy_id", "kind"), index.Fields("exam_id", "created_at"), index.Fields("state")}
}

func (Job) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipWhereInput)}
}

func (Job) Policy() ent.Policy { return rules.JobPolicy() }
