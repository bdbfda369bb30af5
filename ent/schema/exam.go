package schema

import (
	"github.com/korrigo/korrigo/auth/rules"

	"regexp"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/korrigo/korrigo/grading/scheme"
	"github.com/korrigo/korrigo/ids"
)

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

func uniqueIndex(fields ...string) ent.Index { return index.Fields(fields...).Unique() }

// Exam is one sitting of one class, with its marking scheme and correctors.
type Exam struct{ ent.Schema }

func (Exam) Mixin() []ent.Mixin { return []ent.Mixin{withID(ids.Exam), timeMixin{}} }

func (Exam) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").MaxLen(200).NotEmpty().Annotations(entgql.OrderField("NAME")),
		field.String("date").Match(dateRE).Annotations(entgql.Type("Date"), entgql.OrderField("DATE")),
		field.Int("pages_per_booklet").Range(1, 64),
		field.Bool("require_appreciation").Default(false),
		field.JSON("scheme", scheme.Scheme{}).Default(scheme.Scheme{}).Annotations(entgql.Skip()),
		field.Time("scheme_frozen_at").Optional().Nillable(),
		field.Time("results_released_at").Optional().Nillable(),
		field.Time("deleted_at").Optional().Nillable(),
		optionalRef("deleted_by"),
	}
}

func (Exam) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("correctors", User.Type).Annotations(entgql.RelayConnection(), hiddenWhere),
		// An exam with copies is never removed from the database (soft delete only).
		edge.To("copies", ExamCopy.Type).
			Annotations(entsql.OnDelete(entsql.Restrict), entgql.RelayConnection()),
		edge.To("jobs", Job.Type).Annotations(entgql.Skip()),
	}
}

func (Exam) Indexes() []ent.Index {
	return []ent.Index{index.Fields("date"), index.Fields("deleted_at")}
}

func (Exam) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField()}
}

func (Exam) Policy() ent.Policy { return rules.ExamPolicy() }
