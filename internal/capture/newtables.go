package capture

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/ident"
)

// Kinds of the rows of the capture schema's capture_selections (schema.go). Every successful
// install adds its filter and the oids of the tables that existed when it listed them (an
// identical filter already recorded gets the new oids added instead of a second row); 'pgtrig
// ignore' adds a filter of tables left out of the migration. The selections add up: a table not
// captured is new when some install's filter selects its rows (catalog.Filter.Match) and it did
// not exist at that install, and no ignore's filter selects it. So 'install -t a', then
// 'install -t b', then a repair 'install --force -t x' select a, b and x; a repair of one new
// table ('install -t n1') does not hide another (n2 is new to the first install's filter); a
// table that existed at an install but was left out by its filter is not new; and only an
// ignore takes a table out.
const (
	selectionInstall = "install"
	selectionIgnore  = "ignore"
)

// selection is one capture_selections row; known holds only the oids asked about.
type selection struct {
	kind   string
	filter catalog.Filter
	known  []uint32
}

// newTableCandidatesSQL lists the ordinary and partitioned tables, partitions aside (their
// root's capture covers them: CoverNewPartitions), outside the system, temporary and capture
// schemas, that are not captured under their name ($3) nor their oid ($2, a table renamed since
// is reported as dropped), and that do not carry the TRUNCATE capture trigger ($5): a partition
// detached from a captured table keeps it, and is partition_detached's business (no longer
// followed, by design), whether it existed at install or was created since. NOT IN over a
// subquery is a hashed subplan: no array scan per table. The last column says whether
// capture_selections exists ($1): a capture schema made by a release before it has no record of
// what install selected.
const newTableCandidatesSQL = `SELECT c.oid, n.nspname::text, c.relname::text, to_regclass($1) IS NOT NULL
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
  AND n.nspname <> $4 AND c.oid NOT IN (SELECT unnest($2::oid[])) AND (n.nspname || '.' || c.relname) NOT IN (SELECT unnest($3::text[]))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = $5)
ORDER BY 2, 3`

// selectionsSQL reads the recorded selections; of the known oids only those in $1.
const selectionsSQL = `SELECT kind, schemas, exclude_schemas, tables, exclude_tables, exclude_table_data,
  ARRAY(SELECT k FROM unnest(known_tables) k WHERE k IN (SELECT unnest($1::oid[])))
FROM %s.capture_selections`

// detectNewTables reports the tables not captured that the recorded selections make part of the
// migration and that were created after the install selecting them (newTable): their rows are
// neither captured nor copied. One catalog query; a second reads the selections only when
// tables outside the registry exist. reg is the registry as q's snapshot sees it.
func detectNewTables(ctx context.Context, q Querier, schema string, reg []Captured) ([]Drift, error) {
	oids, names := make([]uint32, len(reg)), make([]string, len(reg))
	for i, c := range reg {
		oids[i], names[i] = c.Relid, c.Table.Key()
	}
	type candidate struct {
		oid   uint32
		table ident.Table
	}
	var cands []candidate
	var c candidate
	var recorded bool
	rows, err := q.Query(ctx, newTableCandidatesSQL, selectionsTable(schema), oids, names, schema, TruncateTriggerName(schema))
	if err != nil {
		return nil, fmt.Errorf("look for tables created since capture was installed: %w", err)
	}
	if _, err := pgx.ForEachRow(rows, []any{&c.oid, &c.table.Schema, &c.table.Name, &recorded}, func() error {
		cands = append(cands, c)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("look for tables created since capture was installed: %w", err)
	}
	if len(cands) == 0 || !recorded {
		return nil, nil
	}
	asked := make([]uint32, len(cands))
	for i, c := range cands {
		asked[i] = c.oid
	}
	sels, err := loadSelections(ctx, q, schema, asked)
	if err != nil {
		return nil, err
	}
	var out []Drift
	for _, c := range cands {
		if newTable(sels, c.oid, c.table) {
			out = append(out, Drift{Table: c.table.Key(), Kind: DriftNewTable, Detail: "created after capture was installed: its rows are not captured"})
		}
	}
	return out, nil
}

// newTable decides about one uncaptured table: an install selects it that it did not exist at,
// and no ignore selects it. A table that existed at every install selecting it (a partition
// detached since, a captured table renamed since) is reported by its own drift, not as new.
func newTable(sels []selection, oid uint32, t ident.Table) bool {
	selected := false
	for _, s := range sels {
		switch s.kind {
		case selectionIgnore:
			if s.filter.MatchName(t.Schema, t.Name) {
				return false
			}
		case selectionInstall:
			selected = selected || s.filter.Match(&catalog.Table{Table: t}) && !slices.Contains(s.known, oid)
		}
	}
	return selected
}

func selectionsTable(schema string) string { return ident.Quote(schema) + ".capture_selections" }

// loadSelections reads every recorded selection, with the oids of asked each install knew.
func loadSelections(ctx context.Context, q Querier, schema string, asked []uint32) ([]selection, error) {
	if asked == nil {
		asked = []uint32{}
	}
	rows, err := q.Query(ctx, fmt.Sprintf(selectionsSQL, ident.Quote(schema)), asked)
	if err != nil {
		return nil, fmt.Errorf("read the recorded table selections %s: %w", selectionsTable(schema), err)
	}
	var out []selection
	var s selection
	f := &s.filter
	if _, err := pgx.ForEachRow(rows, []any{&s.kind, &f.Schemas, &f.ExcludeSchemas, &f.Tables, &f.ExcludeTables, &f.ExcludeTableData, &s.known}, func() error {
		g, err := s.filter.Compile()
		if err != nil {
			return err
		}
		out = append(out, selection{kind: s.kind, filter: g, known: slices.Clone(s.known)})
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the recorded table selections %s: %w", selectionsTable(schema), err)
	}
	return out, nil
}

// recordSelectionSQL adds the oids $7 to the row of the same kind and filter, or adds the row.
const recordSelectionSQL = `WITH up AS (
  UPDATE %[1]s SET known_tables = ARRAY(SELECT DISTINCT k FROM unnest(known_tables || $7::oid[]) k ORDER BY k), recorded_at = now()
  WHERE kind = $1 AND schemas = $2 AND exclude_schemas = $3 AND tables = $4 AND exclude_tables = $5 AND exclude_table_data = $6
  RETURNING 1)
INSERT INTO %[1]s (kind, schemas, exclude_schemas, tables, exclude_tables, exclude_table_data, known_tables)
SELECT $1, $2, $3, $4, $5, $6, ARRAY(SELECT DISTINCT k FROM unnest($7::oid[]) k ORDER BY k) WHERE NOT EXISTS (SELECT 1 FROM up)`

// recordSelection records a selection (kind, the filter's patterns, the tables known to it).
func recordSelection(ctx context.Context, conn *pgx.Conn, schema, kind string, f catalog.Filter, known []uint32) error {
	if known == nil {
		known = []uint32{}
	}
	nz := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	_, err := conn.Exec(ctx, fmt.Sprintf(recordSelectionSQL, selectionsTable(schema)), kind,
		nz(f.Schemas), nz(f.ExcludeSchemas), nz(f.Tables), nz(f.ExcludeTables), nz(f.ExcludeTableData), known)
	if err != nil {
		return fmt.Errorf("record the table selection in %s: %w", selectionsTable(schema), err)
	}
	return nil
}

// Ignore records that the tables f selects (by name: catalog.Filter.MatchName, so also tables
// created later that match its patterns) are left out of the migration: they are never reported
// as new tables, and a later install does not capture them unless they are captured already.
// It creates the capture schema when missing and locks no application table.
func Ignore(ctx context.Context, conn *pgx.Conn, schema string, f catalog.Filter) error {
	if schema == "" {
		schema = DefaultSchema
	}
	if len(f.Schemas)+len(f.Tables) == 0 {
		return fmt.Errorf("ignore needs -n or -t: without them it would leave every table out")
	}
	if _, err := f.Compile(); err != nil {
		return err
	}
	if err := EnsureSchema(ctx, conn, schema); err != nil {
		return err
	}
	return recordSelection(ctx, conn, schema, selectionIgnore, f, nil)
}

// ignoredTables returns the names (Key) of the tables a recorded ignore selects.
func ignoredTables(ctx context.Context, q Querier, schema string, tables []ident.Table) (map[string]bool, error) {
	sels, err := loadSelections(ctx, q, schema, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, t := range tables {
		for _, s := range sels {
			if s.kind == selectionIgnore && s.filter.MatchName(t.Schema, t.Name) {
				out[t.Key()] = true
			}
		}
	}
	return out, nil
}

// NewTableHint is the repair of tables created after capture was installed: create each on the
// target, capture it, copy it, build its keys, re-run catch-up; or record that it is left out.
func NewTableHint(schema string, tables []string) string {
	cs := ""
	if schema != "" && schema != DefaultSchema {
		cs = " --capture-schema " + schema
	}
	ts := make([]string, len(tables))
	for i, t := range tables {
		tb, _ := ident.ParseKey(t)
		ts[i] = "-t " + exactPattern(tb)
	}
	t := strings.Join(ts, " ")
	return fmt.Sprintf("to migrate %[3]s, run in order: [1] pgschema dump --source SOURCE --section pre-data %[2]s | pgschema apply --target TARGET "+
		"(creates them on the target; skip if they are there) [2] pgtrig install --source SOURCE%[1]s %[2]s (captures them) "+
		"[3] pgcopyout --source SOURCE%[1]s %[2]s | pgcopyin --target TARGET (copies them) "+
		"[4] pgschema dump --source SOURCE --section indexes %[2]s | pgschema apply --target TARGET (their keys, which catch-up needs), "+
		"then re-run pgdelta: it resumes from its position; to leave them out of the migration instead: pgtrig ignore --source SOURCE%[1]s %[2]s",
		cs, t, strings.Join(tables, ", "))
}

var plainName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// exactPattern is a table pattern (docs/filters.md) matching exactly t, shell-quoted when needed.
func exactPattern(t ident.Table) string {
	part := func(s string) string {
		if plainName.MatchString(s) {
			return s
		}
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	p := part(t.Schema) + "." + part(t.Name)
	if strings.ContainsAny(p, "\" '$`\\!*?[]()&;|<>") {
		return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
	}
	return p
}

// skipIgnored drops from the install's plan the tables 'pgtrig ignore' left out of the migration
// that are not captured yet (a captured table stays captured). A capture schema without the
// selections (dry run against one made by an older release) has no ignores.
func (in *installRun) skipIgnored(ctx context.Context, conn *pgx.Conn, opt InstallOptions) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", selectionsTable(opt.Schema)).Scan(&exists); err != nil {
		return fmt.Errorf("look for %s: %w", selectionsTable(opt.Schema), err)
	}
	if !exists {
		return nil
	}
	tables := make([]ident.Table, len(in.specs))
	for i, s := range in.specs {
		tables[i] = s.Table
	}
	ignored, err := ignoredTables(ctx, conn, opt.Schema, tables)
	if err != nil {
		return err
	}
	in.specs = slices.DeleteFunc(in.specs, func(s plannedTable) bool {
		_, captured := in.reg[s.Table.Key()]
		if ignored[s.Table.Key()] && !captured {
			fmt.Fprintf(opt.Progress, "pgtrig: %s: not captured: left out of the migration by 'pgtrig ignore'\n", s.Table.Key())
			return true
		}
		return false
	})
	return nil
}
