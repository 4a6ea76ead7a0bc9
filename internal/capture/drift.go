package capture

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/cliutil"
)

// ExitSchemaChanged is the exit code of a tool stopped because a captured table's schema changed
// under the migration (DriftError): repair that table (DriftHint) and re-run.
const ExitSchemaChanged = 3

// Drift kinds: what changed on a captured table since its capture was installed.
const (
	DriftDropped         = "dropped"            // no table of that name any more
	DriftRecreated       = "recreated"          // a table of that name with another oid
	DriftColumns         = "columns"            // columns added, dropped, renamed or retyped
	DriftTriggerMissing  = "trigger_missing"    // a capture trigger was dropped
	DriftTriggerDisabled = "trigger_disabled"   // ALTER TABLE ... DISABLE TRIGGER (USER, ALL or by name)
	DriftDetached        = "partition_detached" // a partition captured at install was detached or dropped
	DriftNewTable        = "new_table"          // a table the migration selects, created after install, not captured (newtables.go)
)

// Drift is one change of a captured table's schema that capture or catch-up cannot follow.
type Drift struct {
	Table  string `json:"table"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// DriftError stops a tool because captured tables changed under the migration.
type DriftError struct {
	Schema string
	Drifts []Drift
}

func (e *DriftError) Error() string {
	m := make([]string, len(e.Drifts))
	for i, d := range e.Drifts {
		m[i] = d.Table + ": " + d.Detail
	}
	return "the schema of captured table(s) changed, so their capture or copy no longer holds: " + strings.Join(m, "; ")
}

// Tables are the drifted tables, each once, in order.
func (e *DriftError) Tables() []string {
	var out []string
	for _, d := range e.Drifts {
		if !slices.Contains(out, d.Table) {
			out = append(out, d.Table)
		}
	}
	return out
}

// DriftHint is the repair of the tables: re-install their capture, copy them again, re-run catch-up.
func DriftHint(schema string, tables []string) string {
	cs := ""
	if schema != "" && schema != DefaultSchema {
		cs = " --capture-schema " + schema
	}
	t := strings.Join(tables, " -t ")
	return fmt.Sprintf("repair while the other tables stay as they are: first make the target's table match the source's (the same ALTER TABLE, "+
		"or re-create it), then 'pgtrig install --force%[1]s -t %[2]s' (re-captures them), then copy them again: "+
		"'pgcopyout --source SOURCE%[1]s -t %[2]s | pgcopyin --target TARGET --truncate' (no --target for pgcopyout: it would skip the chunks copied before), then re-run pgdelta: it resumes from its position", cs, t)
}

// DriftFailure returns nil for no drift, else a *DriftError exiting with ExitSchemaChanged and the repair hint.
func DriftFailure(schema string, drifts []Drift) error {
	if len(drifts) == 0 {
		return nil
	}
	e := &DriftError{Schema: schema, Drifts: drifts}
	var gone, created, other, parted []string
	for _, t := range e.Tables() {
		if slices.ContainsFunc(drifts, func(d Drift) bool { return d.Table == t && d.Kind == DriftDropped }) {
			gone = append(gone, t)
		} else if !slices.ContainsFunc(drifts, func(d Drift) bool { return d.Table == t && d.Kind != DriftDetached }) {
			parted = append(parted, t) // only partitions removed: pgdelta follows them
		} else if slices.ContainsFunc(drifts, func(d Drift) bool { return d.Table == t && d.Kind == DriftNewTable }) {
			created = append(created, t)
		} else {
			other = append(other, t)
		}
	}
	var hint []string
	if len(other) > 0 {
		hint = append(hint, DriftHint(schema, other))
	}
	if len(gone) > 0 {
		hint = append(hint, fmt.Sprintf("for %s, gone for good: 'pgtrig install --force' forgets it (drop it on the target too)", strings.Join(gone, ", ")))
	}
	if len(created) > 0 {
		hint = append(hint, NewTableHint(schema, created))
	}
	if len(parted) > 0 {
		hint = append(hint, fmt.Sprintf("for %s, partitions detached or dropped: no repair; the next batch of 'pgdelta sync' (or 'pgdelta apply', then 'pgdelta prune') "+
			"applies them to the target and forgets them here", strings.Join(parted, ", ")))
	}
	return cliutil.WithHint(ExitSchemaChanged, e, strings.Join(hint, "; "))
}

// columnsSQL is the column list recorded at install for the table with oid expression rel:
// "name typeoid typmod" in attnum order, so a rename, a retype, or a column added or dropped shows.
func columnsSQL(rel string) string {
	return `(SELECT coalesce(array_agg(a.attname::text || ' ' || a.atttypid::text || ' ' || a.atttypmod::text ORDER BY a.attnum), '{}')
  FROM pg_catalog.pg_attribute a WHERE a.attrelid = ` + rel + ` AND a.attnum > 0 AND NOT a.attisdropped)`
}

// partitionTreeSQL is the partitions below rel (leaf and intermediate), one row each: relid and
// the text row(pc, pn) makes of the pg_class and pg_namespace rows (index look-ups by oid). A
// partition whose DETACH ... CONCURRENTLY is pending (14+) is out of the tree, as RemovedPartitions
// counts it: a snapshot that sees the pending mark no longer reads its rows through the parent.
func partitionTreeSQL(rel, row string) string {
	const attached = `NOT coalesce((to_jsonb(i) ->> 'inhdetachpending')::boolean, false)`
	return `(WITH RECURSIVE p(relid) AS (SELECT inhrelid FROM pg_catalog.pg_inherits i WHERE inhparent = ` + rel + ` AND ` + attached + `
    UNION ALL SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN p ON i.inhparent = p.relid WHERE ` + attached + `)
  SELECT coalesce(array_agg(x ORDER BY relid), '{}') FROM (SELECT p.relid, (SELECT ` + row + `
    FROM pg_catalog.pg_class pc JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
    WHERE pc.oid = p.relid AND pc.relispartition) x FROM p) s WHERE x IS NOT NULL)`
}

// partitionsSQL is the partition list recorded at install: "oid schema.table" of every partition
// below rel, ordered by oid.
func partitionsSQL(rel string) string {
	return partitionTreeSQL(rel, `pc.oid::text || ' ' || pn.nspname || '.' || pc.relname`)
}

// driftSQL reads, per registered table ($1 keys, $2 schemas, $3 names), the catalog's view of it:
// oid, columns, capture triggers as "name state", and per partition "key|row trigger state|truncate trigger state"
// ("-" when missing). $4: capture trigger names, $5: the row trigger's name, $6: the TRUNCATE trigger's name.
// Partitions are read only for partitioned tables, by oid look-ups.
var driftSQL = `SELECT u.k, coalesce(c.oid, 0), CASE WHEN c.oid IS NULL THEN '{}' ELSE ` + columnsSQL("c.oid") + ` END,
  coalesce((SELECT array_agg(t.tgname::text || ' ' || t.tgenabled::text) FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = ANY($4)), '{}'),
  CASE WHEN c.relkind = 'p' THEN ` + partitionsSQL("c.oid") + ` ELSE '{}' END,
  CASE WHEN c.relkind = 'p' THEN ` + partitionTreeSQL("c.oid", `pn.nspname || '.' || pc.relname || '|' ||
      coalesce((SELECT t.tgenabled::text FROM pg_catalog.pg_trigger t WHERE t.tgrelid = pc.oid AND t.tgname = $5), '-') || '|' ||
      coalesce((SELECT t.tgenabled::text FROM pg_catalog.pg_trigger t WHERE t.tgrelid = pc.oid AND t.tgname = $6), '-')`) + ` ELSE '{}' END
FROM unnest($1::text[], $2::text[], $3::text[]) u(k, s, n)
LEFT JOIN pg_catalog.pg_namespace ns ON ns.nspname = u.s
LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = ns.oid AND c.relname = u.n AND c.relkind IN ('r', 'p')`

// catalogView is driftSQL's row for one table.
type catalogView struct {
	key        string
	oid        uint32
	columns    []string
	triggers   []string
	partitions []string
	children   []string
}

// DetectDrift compares every captured table (only those named in only, when set) with the
// catalog as q's snapshot sees it: dropped or re-created tables, changed columns, capture
// triggers dropped or disabled (on the table or on any partition), and partitions detached or
// dropped since install. It reads the registry and the catalog in one query each. Without only
// (a full check) it also reports tables created since install that it should capture (newtables.go).
func DetectDrift(ctx context.Context, q Querier, schema string, only ...string) ([]Drift, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	reg, err := LoadRegistry(ctx, q, schema)
	if err != nil {
		return nil, err
	}
	if len(only) > 0 {
		reg = slices.DeleteFunc(reg, func(c Captured) bool { return !slices.Contains(only, c.Table.Key()) })
	}
	views, err := readCatalogViews(ctx, q, schema, reg)
	if err != nil {
		return nil, err
	}
	var out []Drift
	for i, c := range reg {
		out = append(out, compareCapture(schema, c, views[i])...)
	}
	if len(only) == 0 {
		created, err := detectNewTables(ctx, q, schema, reg)
		if err != nil {
			return nil, err
		}
		out = append(out, created...)
	}
	return out, nil
}

// readCatalogViews runs driftSQL for reg, returning one view per registry row, in order.
func readCatalogViews(ctx context.Context, q Querier, schema string, reg []Captured) ([]catalogView, error) {
	keys, schemas, names := make([]string, len(reg)), make([]string, len(reg)), make([]string, len(reg))
	for i, c := range reg {
		keys[i], schemas[i], names[i] = c.Table.Key(), c.Table.Schema, c.Table.Name
	}
	rows, err := q.Query(ctx, driftSQL, keys, schemas, names,
		append(captureTriggerNames(schema), TruncateTriggerName(schema)), TriggerName(schema), TruncateTriggerName(schema))
	if err != nil {
		return nil, fmt.Errorf("check captured tables for schema changes: %w", err)
	}
	byKey := map[string]catalogView{}
	var v catalogView
	if _, err := pgx.ForEachRow(rows, []any{&v.key, &v.oid, &v.columns, &v.triggers, &v.partitions, &v.children}, func() error {
		byKey[v.key] = v
		return nil
	}); err != nil {
		return nil, fmt.Errorf("check captured tables for schema changes: %w", err)
	}
	out := make([]catalogView, len(reg))
	for i, k := range keys {
		out[i] = byKey[k]
	}
	return out, nil
}

// compareCapture lists what no longer matches between a registry row and the catalog.
func compareCapture(schema string, c Captured, v catalogView) []Drift {
	name := c.Table.Key()
	d := func(kind, format string, args ...any) Drift {
		return Drift{Table: name, Kind: kind, Detail: fmt.Sprintf(format, args...)}
	}
	switch {
	case v.oid == 0:
		return []Drift{d(DriftDropped, "dropped (no table of that name any more)")}
	case v.oid != c.Relid:
		return []Drift{d(DriftRecreated, "dropped and re-created (oid %d at install, %d now): its rows since were never captured", c.Relid, v.oid)}
	}
	var out []Drift
	if c.Columns != nil && !slices.Equal(c.Columns, v.columns) {
		out = append(out, d(DriftColumns, "columns changed (%s)", columnChange(c.Columns, v.columns)))
	}
	out = append(out, triggerDrift(schema, c, v, d)...)
	if c.Partitions != nil {
		now := map[string]bool{}
		for _, p := range v.partitions {
			now[p] = true
		}
		for _, p := range c.Partitions {
			if !now[p] {
				_, key, _ := strings.Cut(p, " ")
				out = append(out, d(DriftDetached, "partition %s detached or dropped: the target still holds its rows until the next batch of pgdelta sync or apply removes it there (--partition-removed)", key))
			}
		}
	}
	return out
}

// triggerDrift reports capture triggers missing or disabled on the table or its partitions. A
// trigger in state 'D' (disabled) or 'R' (fires only under session_replication_role = replica)
// captures nothing the application writes.
func triggerDrift(schema string, c Captured, v catalogView, d func(kind, format string, args ...any) Drift) []Drift {
	state := map[string]string{}
	for _, t := range v.triggers {
		n, s, _ := strings.Cut(t, " ")
		state[n] = s
	}
	names := []string{TriggerName(schema)}
	if _, ok := state[TriggerName(schema)]; !ok {
		names = captureTriggerNames(schema)[1:] // the statement design: _ins, _upd, _del (and _key with a key)
		if c.Keyless {
			names = names[:3]
		}
	}
	names = append(names, TruncateTriggerName(schema))
	var out []Drift
	var missing, off []string
	for _, n := range names {
		switch s, ok := state[n]; {
		case !ok:
			missing = append(missing, n)
		case s == "D" || s == "R":
			off = append(off, n)
		}
	}
	if len(missing) > 0 {
		out = append(out, d(DriftTriggerMissing, "capture trigger(s) %s dropped: changes since were not captured", strings.Join(missing, ", ")))
	}
	if len(off) > 0 {
		out = append(out, d(DriftTriggerDisabled, "capture trigger(s) %s disabled (ALTER TABLE ... DISABLE TRIGGER): changes since were not captured", strings.Join(off, ", ")))
	}
	for _, ch := range v.children {
		parts := strings.Split(ch, "|")
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "D" || parts[1] == "R" || parts[1] == "-" && names[0] == TriggerName(schema) {
			out = append(out, d(DriftTriggerDisabled, "capture trigger on partition %s is disabled or missing: changes to it since were not captured", parts[0]))
		}
		if parts[2] == "D" || parts[2] == "R" {
			out = append(out, d(DriftTriggerDisabled, "TRUNCATE capture on partition %s is disabled: a TRUNCATE of it is not captured", parts[0]))
		}
	}
	return out
}

// columnChange says how two recorded column lists differ, by name.
func columnChange(was, now []string) string {
	name := func(s string) string {
		f := strings.Split(s, " ")
		if len(f) < 3 {
			return s
		}
		return strings.Join(f[:len(f)-2], " ")
	}
	has := func(list []string, n string) (string, bool) {
		for _, s := range list {
			if name(s) == n {
				return s, true
			}
		}
		return "", false
	}
	var m []string
	for _, s := range now {
		if old, ok := has(was, name(s)); !ok {
			m = append(m, "added "+name(s))
		} else if old != s {
			m = append(m, "retyped "+name(s))
		}
	}
	for _, s := range was {
		if _, ok := has(now, name(s)); !ok {
			m = append(m, "dropped "+name(s))
		}
	}
	if len(m) == 0 {
		m = append(m, "reordered")
	}
	return strings.Join(m, ", ")
}

// CheckCopied returns a *DriftError (exit ExitSchemaChanged) when the captured table (its key, a
// partition root) was dropped, re-created, changed its columns or lost a capture trigger, as q's
// snapshot sees it: pgcopyout runs it in each chunk's transaction, so no chunk is copied from a
// table whose changes are no longer captured. A partition detached since install does not
// matter to a copy (it reads what the parent holds now).
func CheckCopied(ctx context.Context, q Querier, schema, table string) error {
	if schema == "" {
		schema = DefaultSchema
	}
	d, err := DetectDrift(ctx, q, schema, table)
	if err != nil {
		return err
	}
	return DriftFailure(schema, slices.DeleteFunc(d, func(x Drift) bool { return x.Kind == DriftDetached }))
}
