package schema

import (
	"github.com/korrigo/korrigo/auth/rules"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/korrigo/korrigo/ids"
)

// GradingEvent is the append-only audit trail of a copy: transitions, locks,
// identification, dispatch.
type GradingEvent struct{ ent.Schema }

func (GradingEvent) Mixin() []ent.Mixin { return []ent.Mixin{withID(ids.GradingEvent)} }

func (GradingEvent) Fields() []ent.Field {
	return []ent.Field{
		refField("copy_id"),
		optionalRef("actor_id"),
		field.String("action").MaxLen(40).NotEmpty().Annotations(entgql.OrderField("ACTION")),
		field.JSON("metadata", map[string]any{}).Optional().Annotations(entgql.Type("JSON")),
		field.Time("at").Default(nowUTC).Immutable().Annotations(entgql.OrderField("AT")),
	}
}

func (GradingEvent) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("copy", ExamCopy.Type).Field("copy_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Restrict), hiddenWhere),
		edge.To("actor", User.Type).Field("actor_id").Unique().Annotations(hiddenWhere),
	}
}

func (GradingEvent) Indexes() []ent.Index {
	return []ent.Index{index.Fields("copy_id", "at")}
}

func (GradingEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField("gradingEvents")}
}

// AuditLog records security events: logins, exports, downloads, role changes.
type AuditLog struct{ ent.Schema }

func (AuditLog) Mixin() []ent.Mixin { return []ent.Mixin{withID(ids.AuditLog)} }

func (AuditLog) Fields() []ent.Field {
	return []ent.Field{
		optionalRef("actor_id"),
		field.String("action").MaxLen(60).NotEmpty().Annotations(entgql.OrderField("ACTION")),
		field.String("target").MaxLen(200).Default(""),
		field.String("ip").MaxLen(64).Default(""),
		field.JSON("metadata", map[string]any{}).Optional().Annotations(entgql.Type("JSON")),
		field.Time("at").Default(nowUTC).Immutable().Annotations(entgql.OrderField("AT")),
	}
}

func (AuditLog) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("actor", User.Type).Field("actor_id").Unique().Annotations(hiddenWhere),
	}
}

func (AuditLog) Indexes() []ent.Index {
	// (target, action, at) serves the login lockout: failures for one account in a window.
	return []ent.Index{index.Fields("at"), index.Fields("actor_id", "at"), index.Fields("target", "action", "at")}
}

func (AuditLog) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField("auditLogs")}
}

// ApiToken lets an integrator read (or, with the write scope, change) data as its
// owner. Only the SHA-256 of the secret is stored.
type ApiToken struct{ ent.Schema }

func (ApiToken) Mixin() []ent.Mixin { return []ent.Mixin{withID(ids.APIToken), timeMixin{}} }

func (ApiToken) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").MaxLen(100).NotEmpty(),
		field.String("token_hash").Sensitive().Unique().Annotations(entgql.Skip()),
		// First characters of the secret, so a user can tell tokens apart.
		field.String("prefix").MaxLen(16),
		field.Strings("scopes"),
		refField("owner_id"),
		field.Time("expires_at").Optional().Nillable(),
		field.Time("last_used_at").Optional().Nillable(),
		field.Time("revoked_at").Optional().Nillable(),
	}
}

func (ApiToken) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("owner", User.Type).Field("owner_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

func (ApiToken) Indexes() []ent.Index {
	return []ent.Index{index.Fields("owner_id")}
}

func (ApiToken) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipWhereInput)}
}

// Session is a server-side login session; the client holds a random token whose
// SHA-256 is the key.
type Session struct{ ent.Schema }

func (Session) Mixin() []ent.Mixin { return []ent.Mixin{withID(ids.Session)} }

func (Session) Fields() []ent.Field {
	return []ent.Field{
		field.String("token_hash").Sensitive().Unique().Annotations(entgql.Skip()),
		refField("user_id"),
		field.Time("created_at").Default(nowUTC).Immutable(),
		field.Time("last_seen_at").Default(nowUTC),
		// Sliding expiry, renewed on use.
		field.Time("expires_at"),
		// Hard end of the session whatever the activity.
		field.Time("absolute_expires_at"),
		field.String("ip").MaxLen(64).Default(""),
		field.String("user_agent").MaxLen(300).Default(""),
		field.Time("revoked_at").Optional().Nillable(),
	}
}

func (Session) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("user", User.Type).Field("user_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

func (Session) Indexes() []ent.Index {
	return []ent.Index{index.Fields("user_id"), index.Fields("expires_at")}
}

func (Session) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip()}
}

// Blob is a file in the content-addressed store.
type Blob struct{ ent.Schema }

func (Blob) Mixin() []ent.Mixin { return []ent.Mixin{withID(ids.Blob)} }

func (Blob) Fields() []ent.Field {
	return []ent.Field{
		field.String("sha256").MinLen(64).MaxLen(64).Unique().Immutable(),
		field.Int64("size").NonNegative().Immutable(),
		field.String("media_type").MaxLen(100).Immutable(),
		field.Int("pages").Default(0),
		field.Time("created_at").Default(nowUTC).Immutable(),
		// derived_key names a file rendered from another blob (the masked
		// pages of a copy: "masked/v1/<pagesPerBooklet>/<source sha256>"),
		// so it is rendered once; such a blob lives as long as its source.
		field.String("derived_key").Optional().Nillable().Unique().Immutable().MaxLen(200),
	}
}

func (Blob) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip()}
}

func (GradingEvent) Policy() ent.Policy { return rules.GradingEventPolicy() }

func (AuditLog) Policy() ent.Policy { return rules.AdminOnlyPolicy() }

func (ApiToken) Policy() ent.Policy { return rules.APITokenPolicy() }

func (Session) Policy() ent.Policy { return rules.SessionPolicy() }

func (Blob) Policy() ent.Policy { return rules.AdminOnlyPolicy() }

func (GradingEvent) Hooks() []ent.Hook { return appendOnly() }

func (AuditLog) Hooks() []ent.Hook { return appendOnly() }
