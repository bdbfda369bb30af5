package graph_test

import (
	"testing"
	"time"

	"github.com/korrigo/korrigo/db"
	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/apitoken"
	"github.com/korrigo/korrigo/server/servertest"
)

func TestAPITokens(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		env := servertest.New(t, d)
		admin := env.As(env.Admin())
		create := `mutation($in: CreateApiTokenInput!){ createApiToken(input: $in){ token apiToken { id scopes } } }`
		var made struct {
			CreateAPIToken struct {
				Token    string
				APIToken struct {
					ID     string
					Scopes []string
				}
			} `json:"createApiToken"`
		}
		admin.MustDo(create, map[string]any{"in": map[string]any{"name": "LMS sync"}}, &made)
		tok := made.CreateAPIToken
		if tok.Token == "" || len(tok.APIToken.Scopes) != 1 || tok.APIToken.Scopes[0] != "read" {
			t.Fatalf("created token = %+v", tok)
		}
		// Stored hashed: the secret appears in no column.
		row, err := env.DB.Client.ApiToken.Get(env.Ctx(), tok.APIToken.ID)
		if err != nil || row.TokenHash == tok.Token || row.TokenHash == "" {
			t.Fatalf("token stored in clear or missing: %v", err)
		}

		integrator := env.As(tok.Token)
		var exams struct{ Exams struct{ TotalCount int } }
		integrator.MustDo(`{ exams { totalCount } }`, nil, &exams)
		// A read-only token cannot write.
		r := integrator.Do(`mutation { createExam(input:{name:"X", date:"2026-12-01", pagesPerBooklet:4}){ id } }`, nil)
		if code := env.ErrorCode(r); code != "FORBIDDEN" {
			t.Fatalf("read-only token wrote: %s", code)
		}

		// Expired → refused.
		if err := env.DB.Client.ApiToken.Update().Where(apitoken.ID(tok.APIToken.ID)).
			SetExpiresAt(time.Now().UTC().Add(-time.Minute)).Exec(env.Ctx()); err != nil {
			t.Fatal(err)
		}
		if r := integrator.Do(`{ exams { totalCount } }`, nil); r.Status != 401 || env.ErrorCode(r) != "UNAUTHENTICATED" {
			t.Fatalf("expired token accepted: %d %+v", r.Status, r.Errors)
		}

		// Revoked → refused.
		admin.MustDo(create, map[string]any{"in": map[string]any{"name": "BI", "scopes": []string{"read", "write"}}}, &made)
		second := made.CreateAPIToken
		env.As(second.Token).MustDo(`{ exams { totalCount } }`, nil, nil)
		admin.MustDo(`mutation($id: ID!){ revokeApiToken(id: $id) }`, map[string]any{"id": second.APIToken.ID}, nil)
		if r := env.As(second.Token).Do(`{ exams { totalCount } }`, nil); r.Status != 401 || env.ErrorCode(r) != "UNAUTHENTICATED" {
			t.Fatalf("revoked token accepted: %d %+v", r.Status, r.Errors)
		}
	})
}
