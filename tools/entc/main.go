// Command entc generates the ent client and the GraphQL schema of the data model.
// Run it from the module root (make generate): entgql resolves gqlgen.yml and the
// output paths relative to the working directory, and generating from another
// directory makes scalar bindings flip between runs.
package main

import (
	"log"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/entc"
	"entgo.io/ent/entc/gen"
)

func main() {
	ex, err := entgql.NewExtension(
		entgql.WithConfigPath("gqlgen.yml"),
		entgql.WithSchemaGenerator(),
		entgql.WithSchemaPath("graph/ent.graphqls"),
		entgql.WithWhereInputs(true),
		entgql.WithNodeDescriptor(false),
	)
	if err != nil {
		log.Fatalf("entc: creating entgql extension: %v", err)
	}
	cfg := &gen.Config{
		Target:  "ent",
		Package: "github.com/korrigo/korrigo/ent",
		Features: []gen.Feature{
			gen.FeaturePrivacy,
			gen.FeatureEntQL,
			gen.FeatureUpsert,
			gen.FeatureVersionedMigration,
			gen.FeatureExecQuery,
			gen.FeatureModifier,
			gen.FeatureIntercept,
			gen.FeatureNamedEdges,
		},
	}
	// After the extension: a template defined again replaces entgql's.
	paginate := gen.MustParse(gen.NewTemplate("paginate").Funcs(entgql.TemplateFuncs).
		ParseFiles("./tools/entc/template/paginate.tmpl"))
	if err := entc.Generate("./ent/schema", cfg, entc.Extensions(ex),
		entc.TemplateFiles("./tools/entc/template/sqltx.tmpl"),
		func(cfg *gen.Config) error { cfg.Templates = append(cfg.Templates, paginate); return nil }); err != nil {
		log.Fatalf("entc: generating: %v", err)
	}
}
