package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgver"
	"github.com/pgferry/pgferry/internal/retry"
)

// UncapturableError lists selected tables whose changes cannot be captured, each with the reason.
type UncapturableError struct{ Tables, Reasons []string }

func (e *UncapturableError) Error() string {
	m := make([]string, len(e.Tables))
	for i, t := range e.Tables {
		m[i] = t + " (" + e.Reasons[i] + ")"
	}
	return fmt.Sprintf("%d table(s) cannot be captured: %s", len(e.Tables), strings.Join(m, ", "))
}

// UncapturableHint tells the operator what to do about such tables.
const UncapturableHint = "add a primary key (ALTER TABLE ... ADD PRIMARY KEY (...)), or leave the table's rows out with " +
	"--exclude-table-data (or the table with --exclude-table) and move them yourself at cutover; 'pgtrig check' lists them"

// keylessBlocker says why a table without a key cannot be captured as whole rows ("" if it can).
func keylessBlocker(t *catalog.Table) string {
	switch {
	case len(t.KeyColumns) > 0:
		return ""
	case len(t.Columns) == 0:
		return "no key and no stored columns: its rows cannot be told apart or counted by capture"
	case len(t.Columns) > MaxKeylessColumns:
		return fmt.Sprintf("no key and %d stored columns: its delta table would need %d, more than PostgreSQL allows", len(t.Columns), len(t.Columns)+1)
	}
	return ""
}

// Install captures every selected table, one table per transaction, waiting at most
// opt.LockTimeout for each table lock and retrying with backoff. Tables already captured are
// left alone, so a re-run installs only what is missing. A delta table holding changes not yet
// applied is never dropped without opt.Force (reinstallTable); a captured table whose schema
// changed under it is reported as a *DriftError after every other table was installed.
func Install(ctx context.Context, conn *pgx.Conn, opt InstallOptions) (*InstallResult, error) {
	opt.defaults()
	restore, err := pinSearchPath(ctx, conn)
	if err != nil {
		return nil, err
	}
	defer restore()
	warnDeadlockTimeout(ctx, conn, opt)
	in, err := prepareInstall(ctx, conn, &opt)
	if err != nil {
		return nil, err
	}
	res := &InstallResult{}
	var drifted []Drift
	for i, s := range in.specs {
		d, err := in.installTable(ctx, conn, opt, s, fmt.Sprintf("[%d/%d] %s", i+1, len(in.specs), s.Table.Key()), res)
		if err != nil {
			return nil, err
		}
		drifted = append(drifted, d...)
	}
	if err := in.forgetDropped(ctx, conn, opt, &drifted); err != nil {
		return nil, err
	}
	if opt.DryRun != nil {
		return res, nil
	}
	// Recorded only now: a table created since the listing is not known, so it shows as new if selected.
	if err := recordSelection(ctx, conn, opt.Schema, selectionInstall, opt.Filter, in.known); err != nil {
		return nil, err
	}
	if res.Tables, err = LoadRegistry(ctx, conn, opt.Schema); err != nil {
		return nil, err
	}
	if res.Position, err = Position(ctx, conn, opt.Schema); err != nil {
		return nil, err
	}
	if err := DriftFailure(opt.Schema, drifted); err != nil {
		return res, err
	}
	return res, nil
}

// warnDeadlockTimeout warns when the lock timeout is not above deadlock_timeout: a plain
// autovacuum yields to a waiting lock only when the deadlock check runs, after deadlock_timeout,
// so a shorter lock timeout gives up first, every time.
func warnDeadlockTimeout(ctx context.Context, conn *pgx.Conn, opt InstallOptions) {
	var dltText string
	if err := conn.QueryRow(ctx, "SELECT current_setting('deadlock_timeout')").Scan(&dltText); err != nil {
		return
	}
	var dlt time.Duration
	var ms int64
	if _, err := fmt.Sscanf(dltText, "%dms", &ms); err == nil {
		dlt = time.Duration(ms) * time.Millisecond
	} else if _, err := fmt.Sscanf(dltText, "%ds", &ms); err == nil {
		dlt = time.Duration(ms) * time.Second
	}
	if dlt > 0 && opt.LockTimeout <= dlt {
		fmt.Fprintf(opt.Progress, "pgtrig: warning: lock timeout %s is not above deadlock_timeout %s, so a running autovacuum is never cancelled in our favour; prefer --lock-timeout %s\n",
			opt.LockTimeout, dltText, 2*dlt)
	}
}

// installRun is what one Install knows before it installs its first table.
type installRun struct {
	specs    []plannedTable
	ver      pgver.Version
	reg      map[string]Captured
	trig     map[trigKey]bool
	unfenced []string
	views    map[string]catalogView // the catalog's view of each registered table (drift.go)
	known    []uint32               // every table listed, partitions too: none of them is ever a new table (newtables.go)
}

// prepareInstall plans the tables, creates the capture schema and reads what is already installed.
func prepareInstall(ctx context.Context, conn *pgx.Conn, opt *InstallOptions) (*installRun, error) {
	in := &installRun{ver: pgver.Of(conn), reg: map[string]Captured{}, views: map[string]catalogView{}}
	all, err := catalog.ListTables(ctx, conn, opt.Schema)
	if err != nil {
		return nil, err
	}
	if opt.Filter, err = opt.Filter.Resolve(all); err != nil {
		return nil, err
	}
	for _, t := range all {
		in.known = append(in.known, t.OID)
	}
	if in.specs, err = planInstall(ctx, conn, all, opt.Filter, in.ver); err != nil {
		return nil, err
	}
	exists, err := SchemaExists(ctx, conn, opt.Schema)
	if err != nil {
		return nil, err
	}
	if opt.DryRun != nil {
		fmt.Fprintf(opt.DryRun, "-- capture schema %s (no application table is locked)\nBEGIN;\n%sCOMMIT;\n", opt.Schema, BaseSQL(opt.Schema))
	} else if err := EnsureSchema(ctx, conn, opt.Schema); err != nil {
		return nil, cliutil.WithHint(cliutil.ExitFailure, err, "the installing role needs CREATE on the database (GRANT CREATE ON DATABASE ... TO ...)")
	}
	if exists || opt.DryRun == nil {
		list, err := LoadRegistry(ctx, conn, opt.Schema)
		if err != nil {
			return nil, err
		}
		views, err := readCatalogViews(ctx, conn, opt.Schema, list)
		if err != nil {
			return nil, err
		}
		for i, c := range list {
			in.reg[c.Table.Key()] = c
			in.views[c.Table.Key()] = views[i]
		}
	}
	if err := in.skipIgnored(ctx, conn, *opt); err != nil {
		return nil, err
	}
	if in.trig, err = existingTriggers(ctx, conn, opt.Schema); err != nil {
		return nil, err
	}
	if in.unfenced, err = unfencedFunctions(ctx, conn, opt.Schema); err != nil {
		return nil, err
	}
	return in, nil
}

// installTable captures one table, or leaves its capture as it is, and returns the schema
// changes that stop it from being (re-)captured without opt.Force.
func (in *installRun) installTable(ctx context.Context, conn *pgx.Conn, opt InstallOptions, s plannedTable, label string, res *InstallResult) ([]Drift, error) {
	name := s.Table.Key()
	r, ok := in.reg[name]
	same := ok && r.Relid == s.Relid && slices.Equal(r.KeyColumns, s.KeyColumns) && slices.Equal(r.KeyTypes, s.KeyTypes) && r.Keyless == s.Keyless
	complete := same && in.trig[trigKey{s.Relid, TruncateTriggerName(opt.Schema)}]
	for _, n := range s.triggerNames(opt.Schema) {
		complete = complete && in.trig[trigKey{s.Relid, n}]
	}
	var drift []Drift
	if ok {
		drift = compareCapture(opt.Schema, r, in.views[name])
	}
	if complete && len(drift) == 0 {
		if err := backfillRegistry(ctx, conn, opt, r); err != nil {
			return nil, err
		}
		return nil, in.keepTable(ctx, conn, opt, s, label)
	}
	if ok {
		drift, skip, err := in.reinstallTable(ctx, conn, opt, &s, r, same, label, drift)
		if err != nil || skip {
			return drift, err
		}
	}
	s.Present = map[string]bool{}
	for _, n := range append(captureTriggerNames(opt.Schema), TruncateTriggerName(opt.Schema)) {
		s.Present[n] = in.trig[trigKey{s.Relid, n}]
	}
	s.ChildHasTruncate = make([]bool, len(s.Children))
	for j := range s.Children {
		s.ChildHasTruncate[j] = in.trig[trigKey{s.ChildOIDs[j], TruncateTriggerName(opt.Schema)}]
	}
	sql := installSQL(opt.Schema, s.tableSpec, opt.LockTimeout)
	if err := runTable(ctx, conn, opt.DryRun, opt.Progress, name, sql, opt.LockTimeout, opt.Retries, opt.RetryBase); err != nil {
		return nil, err
	}
	res.Installed = append(res.Installed, name)
	if s.EnableOnly && len(s.Children) > 0 {
		fmt.Fprintf(opt.Progress, "pgtrig: warning: %s: %s; install as a superuser to cover them\n", name, clonedOriginNote(in.ver))
	}
	if opt.DryRun == nil {
		how := fmt.Sprintf("key %s, %s", strings.Join(s.KeyColumns, ", "), s.KeySource)
		if s.Keyless {
			how = "no key: " + KeylessSource
		}
		fmt.Fprintf(opt.Progress, "pgtrig: %s: captured (%s)\n", label, how)
	}
	return nil, nil
}

// keepTable leaves a complete capture as it is: it adds the TRUNCATE trigger to partitions
// created since (they get the row trigger by cloning, the TRUNCATE trigger only here) and
// upgrades trigger functions made without the write fence check.
func (in *installRun) keepTable(ctx context.Context, conn *pgx.Conn, opt InstallOptions, s plannedTable, label string) error {
	name := s.Table.Key()
	for j, c := range s.Children {
		if in.trig[trigKey{s.ChildOIDs[j], TruncateTriggerName(opt.Schema)}] {
			continue
		}
		sql := lockTimeoutSQL(opt.LockTimeout) + truncateTriggerSQL(opt.Schema, c, s.Table, s.Owner, false)
		if err := runTable(ctx, conn, opt.DryRun, opt.Progress, c.Key(), sql, opt.LockTimeout, opt.Retries, opt.RetryBase); err != nil {
			return err
		}
		fmt.Fprintf(opt.Progress, "pgtrig: %s: truncate capture added to new partition %s\n", name, c.Key())
	}
	note := ""
	if up, err := upgradeFence(ctx, conn, opt, s.tableSpec, in.unfenced); err != nil {
		return err
	} else if up {
		note = "; trigger functions upgraded to check the write fence"
	}
	fmt.Fprintf(opt.Progress, "pgtrig: %s: already captured%s\n", label, note)
	return nil
}

// reinstallTable decides about a registered table whose capture no longer fits it. Without
// opt.Force, a schema change (drift) is returned, not repaired: the changes made under it were
// not captured, so re-capturing alone would hide that the table must be copied again; and a key
// change keeps the old capture (and the changes waiting under the old key, which pgdelta still
// applies) unless the delta table is empty. skip says the table is left as it is; otherwise
// s.OldDelta names the delta table to drop, if any.
func (in *installRun) reinstallTable(ctx context.Context, conn *pgx.Conn, opt InstallOptions, s *plannedTable, r Captured, same bool,
	label string, drift []Drift) (_ []Drift, skip bool, _ error) {
	name := s.Table.Key()
	waiting, err := waitingChanges(ctx, conn, opt.Schema, r)
	if err != nil {
		return nil, false, err
	}
	if len(drift) > 0 && !opt.Force {
		fmt.Fprintf(opt.Progress, "pgtrig: %s: not re-captured: %s\n", label, drift[0].Detail)
		return drift, true, nil
	}
	if !same && r.Relid == s.Relid && waiting > 0 && !opt.Force {
		// Only the key changed, and the old capture still records every change under the old key.
		fmt.Fprintf(opt.Progress, "pgtrig: warning: %s: key is now %s (%s) but stays %s for capture: %d change(s) recorded under it "+
			"are not applied yet; to capture by the new key, catch up first (pgdelta sync, which prunes) and re-run, "+
			"or re-run with --force and copy the table again\n", label, strings.Join(s.KeyColumns, ", "), s.KeySource, strings.Join(r.KeyColumns, ", "), waiting)
		return nil, true, nil
	}
	if r.DeltaTable != DeltaName(s.Relid) || !same {
		s.OldDelta = r.DeltaTable // the table was re-created or its key changed: its old delta table cannot be reused
	}
	if waiting > 0 || len(drift) > 0 {
		fmt.Fprintf(opt.Progress, "pgtrig: %s: re-captured with --force, %d change(s) not yet applied dropped: copy it again "+
			"(pgcopyout --source SOURCE -t %s | pgcopyin --target TARGET --truncate) and re-run pgdelta\n", label, waiting, name)
	}
	return nil, false, nil
}

// forgetDropped deals with the captured tables the filter selects that no longer exist: with
// opt.Force it removes them from the registry, with their delta tables and trigger functions
// (their triggers went with them); else it adds them to drifted.
func (in *installRun) forgetDropped(ctx context.Context, conn *pgx.Conn, opt InstallOptions, drifted *[]Drift) error {
	qs := ident.Quote(opt.Schema)
	for _, name := range slices.Sorted(maps.Keys(in.reg)) {
		r := in.reg[name]
		if in.views[name].oid != 0 || !opt.Filter.MatchName(r.Table.Schema, r.Table.Name) {
			continue
		}
		if !opt.Force {
			*drifted = append(*drifted, compareCapture(opt.Schema, r, in.views[name])...)
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "DELETE FROM %s.capture_tables WHERE table_name = %s;\nDROP TABLE IF EXISTS %s.%s;\n", qs, ident.Literal(name), qs, ident.Quote(r.DeltaTable))
		for _, suf := range []string{"", "_i", "_u", "_d", "_k"} {
			fmt.Fprintf(&b, "DROP FUNCTION IF EXISTS %s.%s();\n", qs, ident.Quote(FuncName(r.Relid)+suf))
		}
		if err := runTable(ctx, conn, opt.DryRun, opt.Progress, name, lockTimeoutSQL(opt.LockTimeout)+b.String(), opt.LockTimeout, opt.Retries, opt.RetryBase); err != nil {
			return err
		}
		fmt.Fprintf(opt.Progress, "pgtrig: %s: dropped since install: its capture is forgotten (--force)\n", name)
	}
	return nil
}

// waitingChanges counts the rows of r's delta table (changes not yet pruned, so perhaps not
// yet applied), up to a million; 0 when the delta table is gone.
func waitingChanges(ctx context.Context, conn *pgx.Conn, schema string, r Captured) (int64, error) {
	d := ident.Quote(schema) + "." + ident.Quote(r.DeltaTable)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", d).Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM "+d+" LIMIT 1000000) x").Scan(&n); err != nil {
		return 0, fmt.Errorf("count changes waiting for %s: %w", r.Table.Key(), err)
	}
	return n, nil
}

// backfillRegistry records the columns and partitions of a table captured by a release that did
// not record them, so later schema changes show (drift.go).
func backfillRegistry(ctx context.Context, conn *pgx.Conn, opt InstallOptions, r Captured) error {
	if opt.DryRun != nil || (r.Columns != nil && r.Partitions != nil) {
		return nil
	}
	_, err := conn.Exec(ctx, fmt.Sprintf("UPDATE %s.capture_tables SET columns = %s, partitions = %s WHERE table_name = $1",
		ident.Quote(opt.Schema), columnsSQL("relid"), partitionsSQL("relid")), r.Table.Key())
	if err != nil {
		return fmt.Errorf("record columns of %s in the capture registry: %w", r.Table.Key(), err)
	}
	return nil
}

type plannedTable struct {
	tableSpec
	KeySource string
	ChildOIDs []uint32
	kind      string
}

// UseStatementTriggers selects statement-level triggers with transition tables for ordinary
// tables outside inheritance trees (PostgreSQL 10+); docs/benchmarks.md "## Capture" says why.
const UseStatementTriggers = true

// triggerNames are the capture triggers the table's design creates.
func (s tableSpec) triggerNames(schema string) []string {
	if s.Statement && s.Keyless {
		return []string{limitName(schema + sufIns), limitName(schema + sufUpd), limitName(schema + sufDel)}
	}
	if s.Statement {
		return []string{limitName(schema + sufIns), limitName(schema + sufUpd), limitName(schema + sufDel), limitName(schema + sufKey)}
	}
	return []string{limitName(schema + sufRow)}
}

// keyCollations returns, per key column, its collation as a COLLATE clause when it is not the
// type's default ("" otherwise), so the delta table compares keys exactly as the table does.
func keyCollations(ctx context.Context, conn *pgx.Conn, relid uint32, cols []string) ([]string, error) {
	rows, err := conn.Query(ctx, `SELECT a.attname::text, CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
    THEN format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation co ON co.oid = a.attcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`, relid)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	var c, coll string
	if _, err := pgx.ForEachRow(rows, []any{&c, &coll}, func() error { m[c] = coll; return nil }); err != nil {
		return nil, err
	}
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = m[c]
	}
	return out, nil
}

// keyEqualityOps returns, per key column, the schema-qualified equality operator of the key
// index's operator class, e.g. "OPERATOR(pg_catalog.=)".
func keyEqualityOps(ctx context.Context, conn *pgx.Conn, relid uint32, keySource string, cols []string) ([]string, error) {
	idx := "i.indisprimary"
	if name, ok := strings.CutPrefix(keySource, "unique index "); ok {
		idx = "i.indisunique AND ic.relname = " + ident.Literal(name)
	}
	rows, err := conn.Query(ctx, `SELECT a.attname::text, format('OPERATOR(%I.%s)', opn.nspname, op.oprname)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN LATERAL unnest(i.indkey::int2[], i.indclass::oid[]) u(attnum, opclass) ON true
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum
JOIN pg_opclass oc ON oc.oid = u.opclass
JOIN pg_amop am ON am.amopfamily = oc.opcfamily AND am.amopmethod = oc.opcmethod AND am.amopstrategy = 3
  AND am.amoplefttype = oc.opcintype AND am.amoprighttype = oc.opcintype
JOIN pg_operator op ON op.oid = am.amopopr JOIN pg_namespace opn ON opn.oid = op.oprnamespace
WHERE i.indrelid = $1 AND `+idx, relid)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	var c, o string
	if _, err := pgx.ForEachRow(rows, []any{&c, &o}, func() error { m[c] = o; return nil }); err != nil {
		return nil, err
	}
	ops := make([]string, len(cols))
	for i, c := range cols {
		if m[c] == "" {
			return nil, fmt.Errorf("no btree equality operator for key column %s", c)
		}
		ops[i] = m[c]
	}
	return ops, nil
}

// planInstall selects the tables to capture: roots of partition trees and ordinary tables, by
// their key, or as whole rows when they have none. Partitions are captured through their root.
func planInstall(ctx context.Context, conn *pgx.Conn, all []*catalog.Table, f catalog.Filter, ver pgver.Version) ([]plannedTable, error) {
	byKey := map[string]*plannedTable{}
	var out []*plannedTable
	refused := &UncapturableError{}
	for _, t := range all {
		if t.Partition || !f.Match(t) {
			continue
		}
		if why := keylessBlocker(t); why != "" {
			refused.Tables, refused.Reasons = append(refused.Tables, t.Key()), append(refused.Reasons, why)
			continue
		}
		if t.Kind == "p" && !ver.PartitionedRowTriggers() {
			return nil, cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("partitioned table %s needs PostgreSQL 11 or later for row triggers", t.Key()),
				"exclude it with --exclude-table and copy it at cutover")
		}
		types := map[string]string{}
		for _, c := range t.Columns {
			types[c.Name] = c.Type
		}
		p := &plannedTable{tableSpec: tableSpec{Table: t.Table, Relid: t.OID, KeyColumns: t.KeyColumns}, KeySource: t.KeySource, kind: t.Kind}
		if len(t.KeyColumns) == 0 {
			p.KeyColumns, p.KeySource, p.Keyless = t.ColumnNames(), KeylessSource, true
		}
		for _, k := range p.KeyColumns {
			p.KeyTypes = append(p.KeyTypes, types[k])
		}
		byKey[t.Key()] = p
		out = append(out, p)
	}
	if len(refused.Tables) > 0 {
		return nil, cliutil.WithHint(cliutil.ExitFailure, refused, UncapturableHint)
	}
	for _, t := range all {
		if t.Partition && t.Root != nil {
			if p := byKey[t.Root.Key()]; p != nil {
				p.Children = append(p.Children, t.Table)
				p.ChildOIDs = append(p.ChildOIDs, t.OID)
			}
		}
	}
	for _, p := range out {
		// Ownership decides whether the triggers can be made ENABLE ALWAYS (ALTER TABLE needs it).
		// Statement triggers with transition tables see only rows of the table they are on, and
		// only for statements naming it: partitioned tables and inheritance trees get row triggers.
		var inherits bool
		// tgtype bits: ROW 1, BEFORE 2, UPDATE 16: a BEFORE ROW UPDATE trigger of the application's
		// could change a key column the UPDATE does not name.
		if err := conn.QueryRow(ctx, `SELECT pg_has_role(relowner, 'USAGE'), EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = $1 OR inhparent = $1),
  EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal AND tgtype::int & 19 = 19)
  FROM pg_class WHERE oid = $1`, p.Relid).Scan(&p.Owner, &inherits, &p.BeforeUpdate); err != nil {
			return nil, fmt.Errorf("check owner of %s: %w", p.Table.Key(), err)
		}
		p.Statement = UseStatementTriggers && p.kind == "r" && !inherits
		p.EnableOnly = p.Owner && p.kind == "p" && !ver.EnableClonedTriggers() && !superuser(conn)
		var err error
		if !p.Keyless {
			if p.EqOps, err = keyEqualityOps(ctx, conn, p.Relid, p.KeySource, p.KeyColumns); err != nil {
				return nil, fmt.Errorf("read key operators of %s: %w", p.Table.Key(), err)
			}
		}
		if p.KeyCollations, err = keyCollations(ctx, conn, p.Relid, p.KeyColumns); err != nil {
			return nil, fmt.Errorf("read key collations of %s: %w", p.Table.Key(), err)
		}
	}
	res := make([]plannedTable, len(out))
	for i, p := range out {
		res[i] = *p
	}
	return res, nil
}

// superuser reports whether the session's role is a superuser, as the server reported it.
func superuser(conn *pgx.Conn) bool { return conn.PgConn().ParameterStatus("is_superuser") == "on" }

// clonedOriginNote says what a partitioned table captured with EnableOnly misses.
func clonedOriginNote(ver pgver.Version) string {
	return fmt.Sprintf("on PostgreSQL %d the capture trigger cloned to each existing partition stays ENABLE ORIGIN "+
		"(before 13 only a superuser may alter cloned triggers), so writes to those partitions under session_replication_role = replica "+
		"are not captured; partitions created later inherit ENABLE ALWAYS", ver.Major())
}

type trigKey struct {
	relid uint32
	name  string
}

// existingTriggers lists the capture triggers present, by table oid and name.
func existingTriggers(ctx context.Context, conn *pgx.Conn, schema string) (map[trigKey]bool, error) {
	rows, err := conn.Query(ctx, "SELECT tgrelid, tgname FROM pg_trigger WHERE tgname = ANY($1)",
		append(captureTriggerNames(schema), TruncateTriggerName(schema)))
	if err != nil {
		return nil, fmt.Errorf("list capture triggers: %w", err)
	}
	m := map[trigKey]bool{}
	var k trigKey
	_, err = pgx.ForEachRow(rows, []any{&k.relid, &k.name}, func() error { m[k] = true; return nil })
	if err != nil {
		return nil, fmt.Errorf("list capture triggers: %w", err)
	}
	return m, nil
}

// runTable runs one table's DDL in its own transaction, retrying with backoff when the lock is
// not granted within the lock timeout (or a deadlock victim is chosen), so the application never
// waits behind us for longer than the lock timeout.
func runTable(ctx context.Context, conn *pgx.Conn, dry, progress io.Writer,
	name, sql string, lockTimeout time.Duration, retries int, base time.Duration) error {
	if dry != nil {
		fmt.Fprintf(dry, "-- %s\nBEGIN;\n%sCOMMIT;\n", name, sql)
		return nil
	}
	pol := retry.Policy{Attempts: retries + 1, Base: base, Max: 30 * time.Second, Jitter: 0.5, Retryable: lockConflict,
		OnRetry: func(attempt int, _ error, wait time.Duration) {
			fmt.Fprintf(progress, "pgtrig: %s: lock not granted within %s, try %d of %d again in %s\n", name, lockTimeout, attempt+1, retries+1, wait.Round(10*time.Millisecond))
		}}
	err := pol.Do(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql)
			return err
		})
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case !lockConflict(err):
		return permanentError(name, err)
	}
	tries := 1
	if gu := (*retry.GaveUpError)(nil); errors.As(err, &gu) {
		tries, err = gu.Attempts, gu.Err
	}
	return cliutil.WithHint(cliutil.ExitFailure,
		fmt.Errorf("lock %s: not granted within %s after %d tries: %w", name, lockTimeout, tries, err),
		"a long transaction or an anti-wraparound vacuum holds the table ('pgtrig check' shows them); re-run later, or raise --lock-timeout / --retries")
}

func lockConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "55P03" || pe.Code == "40P01")
}

func permanentError(name string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "42501" || strings.Contains(pe.Message, "must be owner")) {
		return cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("install capture on %s: %w", name, err),
			"run as the table's owner, or GRANT TRIGGER ON the table to the installing role")
	}
	return fmt.Errorf("install capture on %s: %w", name, err)
}

// pinSearchPath sets search_path to pg_catalog for the session, so format_type() qualifies every
// non-catalog type, and returns a function that restores the previous value.
func pinSearchPath(ctx context.Context, conn *pgx.Conn) (func(), error) {
	var old string
	if err := conn.QueryRow(ctx, "SELECT current_setting('search_path')").Scan(&old); err != nil {
		return nil, fmt.Errorf("read search_path: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT set_config('search_path', 'pg_catalog', false)"); err != nil {
		return nil, fmt.Errorf("set search_path: %w", err)
	}
	return func() {
		if conn.IsClosed() {
			return
		}
		conn.Exec(context.WithoutCancel(ctx), "SELECT set_config('search_path', $1, false)", old)
	}, nil
}
