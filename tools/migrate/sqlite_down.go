package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"ariga.io/atlas/sql/migrate"
	entschema "entgo.io/ent/dialect/sql/schema"

	entmigrate "github.com/korrigo/korrigo/ent/migrate"
)

// Atlas plans SQLite tables in name order (SQLite accepts a foreign key to a table
// that does not exist yet), so the reversed plan drops a parent before its children
// and SQLite refuses. fixSQLiteDown reorders the DROP TABLE statements of the Down
// sections children-first, keeping every other statement where it is; an index
// then may already be gone with its table, hence DROP INDEX IF EXISTS.
func fixSQLiteDown(dir migrate.Dir) error {
	files, err := dir.Files()
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	order := dropOrder(entmigrate.Tables)
	changed := false
	for _, f := range files {
		src := string(f.Bytes())
		up, down, ok := strings.Cut(src, "-- +goose Down\n")
		if !ok {
			continue
		}
		fixed := strings.ReplaceAll(reorderDrops(down, order), "DROP INDEX `", "DROP INDEX IF EXISTS `")
		if fixed == down {
			continue
		}
		if err := dir.WriteFile(f.Name(), []byte(up+"-- +goose Down\n"+fixed)); err != nil {
			return fmt.Errorf("rewrite %s: %w", f.Name(), err)
		}
		changed = true
	}
	if !changed {
		return nil
	}
	sum, err := dir.Checksum()
	if err != nil {
		return fmt.Errorf("checksum: %w", err)
	}
	return migrate.WriteSumFile(dir, sum)
}

var dropTableRE = regexp.MustCompile("^DROP TABLE `([^`]+)`;$")

// reorderDrops permutes the DROP TABLE blocks (a "-- reverse:" comment and its
// statement) among their own positions.
func reorderDrops(down string, rank map[string]int) string {
	lines := strings.Split(strings.TrimSuffix(down, "\n"), "\n")
	type block struct {
		text  string
		table string
	}
	var blocks []block
	for i := 0; i < len(lines); i++ {
		text := lines[i]
		if strings.HasPrefix(text, "-- ") && i+1 < len(lines) {
			i++
			text += "\n" + lines[i]
		}
		last := text[strings.LastIndex(text, "\n")+1:]
		b := block{text: text}
		if m := dropTableRE.FindStringSubmatch(last); m != nil {
			b.table = m[1]
		}
		blocks = append(blocks, b)
	}
	var slots []int
	var drops []block
	for i, b := range blocks {
		if b.table != "" {
			slots = append(slots, i)
			drops = append(drops, b)
		}
	}
	slices.SortStableFunc(drops, func(a, b block) int { return rank[a.table] - rank[b.table] })
	for i, slot := range slots {
		blocks[slot] = drops[i]
	}
	out := make([]string, len(blocks))
	for i, b := range blocks {
		out[i] = b.text
	}
	return strings.Join(out, "\n") + "\n"
}

// dropOrder ranks tables so that a table comes before every table it references.
func dropOrder(tables []*entschema.Table) map[string]int {
	var parentsFirst []string
	seen := map[string]bool{}
	var visit func(t *entschema.Table)
	visit = func(t *entschema.Table) {
		if seen[t.Name] {
			return
		}
		seen[t.Name] = true
		for _, fk := range t.ForeignKeys {
			if fk.RefTable != nil && fk.RefTable.Name != t.Name {
				visit(fk.RefTable)
			}
		}
		parentsFirst = append(parentsFirst, t.Name)
	}
	for _, t := range tables {
		visit(t)
	}
	rank := make(map[string]int, len(parentsFirst))
	for i, name := range parentsFirst {
		rank[name] = len(parentsFirst) - i
	}
	return rank
}
