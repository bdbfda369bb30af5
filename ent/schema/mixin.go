package schema

import (
	"github.com/korrigo/korrigo/ent/hook"

	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/mixin"

	"github.com/korrigo/korrigo/ids"
)

// idMixin gives a type an opaque, prefixed string id (see package ids).
type idMixin struct {
	mixin.Schema
	prefix string
}

func withID(prefix string) idMixin { return idMixin{prefix: prefix} }

func (m idMixin) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			MaxLen(40).
			NotEmpty().
			Immutable().
			DefaultFunc(ids.Generator(m.prefix)),
	}
}

// timeMixin records creation and last change.
type timeMixin struct{ mixin.Schema }

func (timeMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").
			Default(nowUTC).
			Immutable().
			Annotations(entgql.OrderField("CREATED_AT")),
		field.Time("updated_at").
			Default(nowUTC).
			UpdateDefault(nowUTC).
			Annotations(entgql.OrderField("UPDATED_AT")),
	}
}

// refField is an edge's foreign-key column: hidden from GraphQL, where the edge
// itself is exposed and authorized.
func refField(name string) ent.Field {
	return field.String(name).MaxLen(40).Annotations(entgql.Skip())
}

// optionalRef is a nullable refField.
func optionalRef(name string) ent.Field {
	return field.String(name).MaxLen(40).Optional().Nillable().Annotations(entgql.Skip())
}

// hiddenWhere keeps an edge out of where-inputs: a predicate over another type is a
// SQL subquery that the privacy rules of that type do not filter, so it could be
// used to probe data the caller may not read.
var hiddenWhere = entgql.Skip(entgql.SkipWhereInput)

// appendOnly refuses updates and deletes: audit trails are never rewritten.
func appendOnly() []ent.Hook {
	return []ent.Hook{hook.Reject(ent.OpUpdate | ent.OpUpdateOne | ent.OpDelete | ent.OpDeleteOne)}
}

// nowUTC keeps every stored time in UTC: SQLite compares times as text, which is
// only correct when they share one offset.
func nowUTC() time.Time { return time.Now().UTC() }
