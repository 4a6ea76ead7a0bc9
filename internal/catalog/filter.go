package catalog

import (
	"fmt"
	"path"

	"github.com/urfave/cli/v2"
)

// Filter selects tables by schema and by name patterns (shell globs over "schema.table" or "table").
type Filter struct {
	Schemas        []string
	ExcludeSchemas []string
	Tables         []string
	ExcludeTables  []string
}

// FilterFlags are the standard selection flags shared by the tools.
func FilterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "schema", Aliases: []string{"n"}, Usage: "only tables in these schemas (repeatable)", EnvVars: []string{"PGFERRY_SCHEMA"}},
		&cli.StringSliceFlag{Name: "exclude-schema", Aliases: []string{"N"}, Usage: "skip tables in these schemas (repeatable)", EnvVars: []string{"PGFERRY_EXCLUDE_SCHEMA"}},
		&cli.StringSliceFlag{Name: "table", Aliases: []string{"t"}, Usage: "only tables matching these globs, as 'schema.table' or 'table' (repeatable)", EnvVars: []string{"PGFERRY_TABLE"}},
		&cli.StringSliceFlag{Name: "exclude-table", Aliases: []string{"T"}, Usage: "skip tables matching these globs (repeatable)", EnvVars: []string{"PGFERRY_EXCLUDE_TABLE"}},
	}
}

// FilterFromCLI builds a Filter from FilterFlags and checks the patterns.
func FilterFromCLI(c *cli.Context) (Filter, error) {
	f := Filter{
		Schemas: c.StringSlice("schema"), ExcludeSchemas: c.StringSlice("exclude-schema"),
		Tables: c.StringSlice("table"), ExcludeTables: c.StringSlice("exclude-table"),
	}
	for _, p := range append(append(append([]string{}, f.Schemas...), f.ExcludeSchemas...), append(f.Tables, f.ExcludeTables...)...) {
		if _, err := path.Match(p, ""); err != nil {
			return f, fmt.Errorf("bad pattern %q: %w", p, err)
		}
	}
	return f, nil
}

// Match reports whether a table is selected. A partition is selected when it or its root is.
func (f Filter) Match(t *Table) bool {
	if t.Root != nil {
		return f.match(t.Root.Schema, t.Root.Name)
	}
	return f.match(t.Schema, t.Name)
}

// MatchName reports whether schema.name is selected.
func (f Filter) MatchName(schema, name string) bool { return f.match(schema, name) }

func (f Filter) match(schema, name string) bool {
	if len(f.Schemas) > 0 && !anyGlob(f.Schemas, schema) {
		return false
	}
	if anyGlob(f.ExcludeSchemas, schema) {
		return false
	}
	full := schema + "." + name
	if len(f.Tables) > 0 && !anyGlob(f.Tables, full) && !anyGlob(f.Tables, name) {
		return false
	}
	if anyGlob(f.ExcludeTables, full) || anyGlob(f.ExcludeTables, name) {
		return false
	}
	return true
}

func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}
