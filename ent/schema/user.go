package schema

import (
	"context"

	"github.com/korrigo/korrigo/auth/rules"
	gen "github.com/korrigo/korrigo/ent"
	"github.com/korrigo/korrigo/ent/hook"
	"github.com/korrigo/korrigo/office/fold"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"

	"github.com/korrigo/korrigo/ids"
)

// User is anyone who logs in: admins (exam office), teachers (correctors), students.
type User struct{ ent.Schema }

func (User) Mixin() []ent.Mixin { return []ent.Mixin{withID(ids.User), timeMixin{}} }

func (User) Fields() []ent.Field {
	return []ent.Field{
		// Stored lower-cased by the auth service, so uniqueness is case-insensitive.
		field.String("email").MaxLen(254).NotEmpty().Unique().
			Annotations(entgql.OrderField("EMAIL")),
		field.String("name").MaxLen(200).NotEmpty().
			Annotations(entgql.OrderField("NAME")),
		field.Enum("role").Values("ADMIN", "TEACHER", "STUDENT").
			Annotations(entgql.OrderField("ROLE")),
		field.String("password_hash").Sensitive().Annotations(entgql.Skip()),
		field.Bool("active").Default(true),
		field.Bool("must_change_password").Default(false),
	}
}

func (User) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("corrected_exams", Exam.Type).Ref("correctors").Annotations(hiddenWhere),
		edge.From("assigned_copies", ExamCopy.Type).Ref("assigned_corrector").Annotations(entgql.Skip()),
		edge.To("student", Student.Type).Unique().Annotations(entgql.Skip()),
		edge.From("sessions", Session.Type).Ref("user").Annotations(entgql.Skip()),
		edge.From("api_tokens", ApiToken.Type).Ref("owner").Annotations(entgql.Skip()),
	}
}

func (User) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField()}
}

// Student is a pupil of the school, imported from the school's CSV. Only admins
// (and the student's own account) ever read it: copies are graded anonymously.
type Student struct{ ent.Schema }

func (Student) Mixin() []ent.Mixin { return []ent.Mixin{withID(ids.Student), timeMixin{}} }

func (Student) Fields() []ent.Field {
	return []ent.Field{
		field.String("last_name").MaxLen(100).NotEmpty().Annotations(entgql.OrderField("LAST_NAME")),
		field.String("first_name").MaxLen(100).NotEmpty().Annotations(entgql.OrderField("FIRST_NAME")),
		field.String("birth_date").Match(dateRE).Annotations(entgql.Type("Date")),
		field.String("email").MaxLen(254).Optional().Nillable(),
		field.String("class_name").MaxLen(50).Annotations(entgql.OrderField("CLASS_NAME")),
		field.String("group").MaxLen(50).Optional().Nillable(),
		optionalRef("user_id"),
		// Folded "last first" (lower case, no accents) for suggestStudents; kept in
		// step with the names by the hook below.
		field.String("search_key").MaxLen(250).Default("").Annotations(entgql.Skip()),
	}
}

// Hooks keep search_key in step with the names, whoever writes them.
func (Student) Hooks() []ent.Hook {
	return []ent.Hook{func(next ent.Mutator) ent.Mutator {
		return hook.StudentFunc(func(ctx context.Context, m *gen.StudentMutation) (ent.Value, error) {
			last, lok := m.LastName()
			first, fok := m.FirstName()
			if lok || fok {
				if !lok || !fok {
					if !m.Op().Is(ent.OpUpdateOne) {
						return next.Mutate(ctx, m) // a bulk rename of one part: not used
					}
					if !lok {
						last, _ = m.OldLastName(ctx)
					}
					if !fok {
						first, _ = m.OldFirstName(ctx)
					}
				}
				if err := m.SetField("search_key", fold.Key(last, first)); err != nil {
					return nil, err
				}
			}
			return next.Mutate(ctx, m)
		})
	}}
}

func (Student) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("student").Unique().Field("user_id").Annotations(entgql.Skip()),
		edge.From("copies", ExamCopy.Type).Ref("student").Annotations(entgql.Skip()),
	}
}

func (Student) Indexes() []ent.Index {
	return []ent.Index{uniqueIndex("last_name", "first_name", "birth_date")}
}

func (Student) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField()}
}

func (User) Policy() ent.Policy { return rules.UserPolicy() }

func (Student) Policy() ent.Policy { return rules.StudentPolicy() }
