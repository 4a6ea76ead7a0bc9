package catalog

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/ident"
)

// Filter selects tables with pg_dump's patterns (docs/filters.md): a table is selected when its
// schema matches a -n pattern (or none is given) and no -N pattern, and its name matches a -t
// pattern (or none is given) and no -T pattern. ExcludeTableData is pg_dump's
// --exclude-table-data: the table's definition is kept (MatchName), its rows are neither copied,
// captured nor verified (Match). A partition follows its partitioned table (its root).
type Filter struct {
	Schemas          []string
	ExcludeSchemas   []string
	Tables           []string
	ExcludeTables    []string
	ExcludeTableData []string

	c *compiled // set by Compile; a Filter written as a literal compiles when used
}

type compiled struct {
	schemas, excludeSchemas                 []namePattern
	tables, excludeTables, excludeTableData []relPattern
	// viaPartition holds the roots that Resolve selected because a -t pattern names one of
	// their partitions.
	viaPartition map[ident.Table]bool
}

// FilterFlags are the standard selection flags shared by the tools.
func FilterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "schema", Aliases: []string{"n"}, Usage: "only tables in schemas matching this pattern (repeatable; pg_dump's patterns: * and ?, letters folded to lower case unless \"double-quoted\")", EnvVars: []string{"PGFERRY_SCHEMA"}},
		&cli.StringSliceFlag{Name: "exclude-schema", Aliases: []string{"N"}, Usage: "skip tables in schemas matching this pattern (repeatable)", EnvVars: []string{"PGFERRY_EXCLUDE_SCHEMA"}},
		&cli.StringSliceFlag{Name: "table", Aliases: []string{"t"}, Usage: "only tables matching this pattern, 'schema.table' or 'table' (in any schema) (repeatable); a partition selects its partitioned table; no match at all is an error", EnvVars: []string{"PGFERRY_TABLE"}},
		&cli.StringSliceFlag{Name: "exclude-table", Aliases: []string{"T"}, Usage: "skip tables matching this pattern (repeatable)", EnvVars: []string{"PGFERRY_EXCLUDE_TABLE"}},
		&cli.StringSliceFlag{Name: "exclude-table-data", Usage: "keep the definition of tables matching this pattern but not their rows, as pg_dump's --exclude-table-data (repeatable)", EnvVars: []string{"PGFERRY_EXCLUDE_TABLE_DATA"}},
	}
}

// FilterFromCLI builds a Filter from FilterFlags and compiles its patterns.
func FilterFromCLI(c *cli.Context) (Filter, error) {
	f := Filter{
		Schemas: c.StringSlice("schema"), ExcludeSchemas: c.StringSlice("exclude-schema"),
		Tables: c.StringSlice("table"), ExcludeTables: c.StringSlice("exclude-table"), ExcludeTableData: c.StringSlice("exclude-table-data"),
	}
	return f.Compile()
}

// Compile checks and compiles the patterns; the error is a *PatternError.
func (f Filter) Compile() (Filter, error) {
	c := &compiled{}
	for _, s := range []struct {
		option   string
		patterns []string
		out      *[]namePattern
	}{{"-n", f.Schemas, &c.schemas}, {"-N", f.ExcludeSchemas, &c.excludeSchemas}} {
		for _, p := range s.patterns {
			np, err := compileSchemaPattern(s.option, p)
			if err != nil {
				return f, err
			}
			*s.out = append(*s.out, np)
		}
	}
	for _, s := range []struct {
		option   string
		patterns []string
		out      *[]relPattern
	}{{"-t", f.Tables, &c.tables}, {"-T", f.ExcludeTables, &c.excludeTables}, {"--exclude-table-data", f.ExcludeTableData, &c.excludeTableData}} {
		for _, p := range s.patterns {
			rp, err := compileRelPattern(s.option, p)
			if err != nil {
				return f, err
			}
			*s.out = append(*s.out, rp)
		}
	}
	f.c = c
	return f, nil
}

// comp returns the compiled patterns; a pattern that does not compile matches nothing.
func (f Filter) comp() *compiled {
	if f.c != nil {
		return f.c
	}
	g, err := f.Compile()
	if err != nil {
		return &compiled{schemas: []namePattern{{never}}, tables: []relPattern{{name: namePattern{never}}}}
	}
	return g.c
}

// Match reports whether a table's rows are moved: it is selected and its data not excluded. A
// partition follows its root.
func (f Filter) Match(t *Table) bool {
	r := t.Table
	if t.Root != nil {
		r = *t.Root
	}
	return f.MatchName(r.Schema, r.Name) && !f.ExcludesData(r.Schema, r.Name)
}

// MatchName reports whether schema.name (a table, or a partitioned table's root) is selected: its
// definition is moved (with --exclude-table-data, perhaps without its rows).
func (f Filter) MatchName(schema, name string) bool {
	c, t := f.comp(), ident.Table{Schema: schema, Name: name}
	return (c.includes(t) || c.viaPartition[t]) && !c.excludes(t)
}

// MatchSchema applies only the schema patterns (-n, -N), for objects that are not tables.
func (f Filter) MatchSchema(schema string) bool {
	c := f.comp()
	return (len(c.schemas) == 0 || anyName(c.schemas, schema)) && !anyName(c.excludeSchemas, schema)
}

// ExcludesData reports whether --exclude-table-data names schema.name.
func (f Filter) ExcludesData(schema, name string) bool {
	return anyRel(f.comp().excludeTableData, ident.Table{Schema: schema, Name: name})
}

// includes: t passes -n and -t.
func (c *compiled) includes(t ident.Table) bool {
	return (len(c.schemas) == 0 || anyName(c.schemas, t.Schema)) && (len(c.tables) == 0 || anyRel(c.tables, t))
}

// excludes: t matches -N or -T.
func (c *compiled) excludes(t ident.Table) bool {
	return anyName(c.excludeSchemas, t.Schema) || anyRel(c.excludeTables, t)
}

func anyName(ps []namePattern, s string) bool {
	for _, p := range ps {
		if p.match(s) {
			return true
		}
	}
	return false
}

func anyRel(ps []relPattern, t ident.Table) bool {
	for _, p := range ps {
		if p.match(t) {
			return true
		}
	}
	return false
}

// Resolve checks the filter against the tables it selects from (ListTables' list, partitions
// included) and returns the filter to match them with. A -t pattern that names a partition
// selects its root (pgferry moves, captures and verifies a partitioned table whole). It fails,
// before anything is written, when -n/-t patterns are given and no table matches them
// (*NoMatchError, as pg_dump fails), or when an exclusion names a partition of a selected table
// but not the table (*PartitionPatternError); both exit 1.
func (f Filter) Resolve(all []*Table) (Filter, error) {
	c := *f.comp()
	c.viaPartition = map[ident.Table]bool{}
	matched := false
	for _, t := range all {
		if c.includes(t.Table) {
			matched = true
			if t.Root != nil && !c.includes(*t.Root) {
				c.viaPartition[*t.Root] = true
			}
		}
	}
	if len(c.schemas)+len(c.tables) > 0 && !matched {
		return f, f.noMatch()
	}
	f.c = &c
	for _, t := range all {
		if t.Root == nil || !f.MatchName(t.Root.Schema, t.Root.Name) {
			continue
		}
		if c.excludes(t.Table) || f.ExcludesData(t.Schema, t.Name) && !f.ExcludesData(t.Root.Schema, t.Root.Name) {
			return f, cliutil.WithHint(cliutil.ExitFailure, &PartitionPatternError{Partition: t.Table, Root: *t.Root},
				"exclude the partitioned table itself, or narrow the pattern so that it matches none of its partitions")
		}
	}
	return f, nil
}

// Excluded is a table the filters leave out, or whose rows they leave out.
type Excluded struct {
	Table    string `json:"table"`     // unquoted schema.table
	RowsOnly bool   `json:"rows_only"` // --exclude-table-data: the definition is moved, the rows are not
}

// Excluded lists the tables of all (partitions aside: they follow their root) that f leaves out.
func (f Filter) Excluded(all []*Table) []Excluded {
	out := []Excluded{}
	for _, t := range all {
		switch {
		case t.Partition:
		case !f.MatchName(t.Schema, t.Name):
			out = append(out, Excluded{Table: t.Key()})
		case f.ExcludesData(t.Schema, t.Name):
			out = append(out, Excluded{Table: t.Key(), RowsOnly: true})
		}
	}
	return out
}

// NoMatchError: the -n/-t patterns match no table.
type NoMatchError struct{ Schemas, Tables []string }

func (e *NoMatchError) Error() string {
	var b strings.Builder
	b.WriteString("no table matches")
	for _, p := range e.Schemas {
		b.WriteString(" -n " + shellWord(p))
	}
	for _, p := range e.Tables {
		b.WriteString(" -t " + shellWord(p))
	}
	return b.String()
}

func (f Filter) noMatch() error {
	err := &NoMatchError{Schemas: f.Schemas, Tables: f.Tables}
	for _, p := range append(append([]string{}, f.Schemas...), f.Tables...) {
		if foldsUpper(p) {
			return cliutil.WithHint(cliutil.ExitFailure, err,
				`letters outside double quotes are folded to lower case, as in SQL: quote a name to keep its case, e.g. -t '"Orders"' or -t 'public."Orders"'`)
		}
	}
	return cliutil.WithHint(cliutil.ExitFailure, err, "a pattern is 'table' (in any schema) or 'schema.table', with * and ?; 'pgtrig check' lists the tables")
}

// PartitionPatternError: an exclusion names a partition of a selected table, not the table.
type PartitionPatternError struct{ Partition, Root ident.Table }

func (e *PartitionPatternError) Error() string {
	return fmt.Sprintf("the exclusions name partition %s but not its partitioned table %s, which is moved whole", e.Partition.Key(), e.Root.Key())
}
