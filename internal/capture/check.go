package capture

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/lobj"
	"github.com/pgferry/pgferry/internal/pgver"
)

// DefaultLongTx is the transaction age check reports.
const DefaultLongTx = time.Minute

// CheckOptions tune Check.
type CheckOptions struct {
	Schema string
	Filter catalog.Filter
	LongTx time.Duration // a transaction older than this holding a table lock blocks install (default 1m)
}

// CheckTable is the preflight view of one table that install would capture.
type CheckTable struct {
	Table        string   `json:"table"`
	Kind         string   `json:"kind"` // "table" or "partitioned"
	Partitions   int      `json:"partitions"`
	Key          []string `json:"key_columns"`
	KeySource    string   `json:"key_source"`
	Unlogged     bool     `json:"unlogged"`
	EstRows      int64    `json:"est_rows"`
	Bytes        int64    `json:"bytes"`
	Writes       int64    `json:"writes"`         // rows inserted+updated+deleted since statistics were reset
	WritesPerSec float64  `json:"writes_per_sec"` // Writes over the time since the reset
	Captured     bool     `json:"captured"`
	// Keyless is how the changed rows of a table without a key are found (nil for keyed tables).
	Keyless *KeylessLookup `json:"keyless,omitempty"`
}

// Problem is something that blocks install ("error"), deserves attention ("warning") or is worth
// knowing ("info").
type Problem struct {
	Severity string `json:"severity"`
	Kind     string `json:"kind"` // keyless, uncapturable, privilege, row_security, unlogged, lock_holder, wraparound_vacuum, long_transaction, version, schema_changed
	Table    string `json:"table,omitempty"`
	Message  string `json:"message"`
	Remedy   string `json:"remedy,omitempty"`
}

// CheckReport is the result of a preflight check.
type CheckReport struct {
	Server       string       `json:"server_version"`
	Role         string       `json:"role"`
	Superuser    bool         `json:"superuser"`
	SchemaExists bool         `json:"capture_schema_exists"`
	StatsSince   time.Time    `json:"stats_since"`
	Tables       []CheckTable `json:"tables"`
	Problems     []Problem    `json:"problems"`
	Blocking     int          `json:"blocking"`
	// Excluded: the tables the filters leave out, or whose rows they leave out.
	Excluded []catalog.Excluded `json:"excluded"`
	// LargeObjects and LargeObjectBytes: pg_largeobject, copied by pgdelta lo-sync (bytes: the readable ones).
	LargeObjects     int64 `json:"large_objects"`
	LargeObjectBytes int64 `json:"large_object_bytes"`
}

func (r *CheckReport) add(p Problem) {
	r.Problems = append(r.Problems, p)
	if p.Severity == "error" {
		r.Blocking++
	}
}

// Check inspects the source for everything that would stop or slow a capture install.
func Check(ctx context.Context, conn *pgx.Conn, opt CheckOptions) (*CheckReport, error) {
	if opt.Schema == "" {
		opt.Schema = DefaultSchema
	}
	if opt.LongTx <= 0 {
		opt.LongTx = DefaultLongTx
	}
	restore, err := pinSearchPath(ctx, conn)
	if err != nil {
		return nil, err
	}
	defer restore()
	rep := &CheckReport{Tables: []CheckTable{}, Problems: []Problem{}}
	ver := pgver.Of(conn)
	captured, err := checkServer(ctx, conn, opt.Schema, rep)
	if err != nil {
		return nil, err
	}
	all, err := catalog.ListTables(ctx, conn, opt.Schema)
	if err != nil {
		return nil, err
	}
	if opt.Filter, err = opt.Filter.Resolve(all); err != nil {
		return nil, err
	}
	rep.Excluded = opt.Filter.Excluded(all)
	oids, err := checkTables(ctx, conn, all, opt.Filter, captured, ver, rep)
	if err != nil {
		return nil, err
	}
	if err := checkTablePrivileges(ctx, conn, all, opt.Filter, ver, rep); err != nil {
		return nil, err
	}
	if err := checkRowSecurity(ctx, conn, all, opt.Filter, rep); err != nil {
		return nil, err
	}
	if err := checkBlockers(ctx, conn, oids, opt.LongTx, rep); err != nil {
		return nil, err
	}
	if err := checkLargeObjects(ctx, conn, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// checkServer fills in the server facts, reports missing privileges on the capture schema and
// schema changes of captured tables (drift.go), and returns the captured tables by name.
func checkServer(ctx context.Context, conn *pgx.Conn, schema string, rep *CheckReport) (map[string]bool, error) {
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_user,
  (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
  coalesce((SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()), pg_postmaster_start_time())`).
		Scan(&rep.Server, &rep.Role, &rep.Superuser, &rep.StatsSince); err != nil {
		return nil, fmt.Errorf("read server facts: %w", err)
	}
	var err error
	if rep.SchemaExists, err = SchemaExists(ctx, conn, schema); err != nil {
		return nil, err
	}
	captured := map[string]bool{}
	var ok bool
	if rep.SchemaExists {
		reg, err := LoadRegistry(ctx, conn, schema)
		if err != nil {
			return nil, err
		}
		for _, c := range reg {
			captured[c.Table.Key()] = true
		}
		drifts, err := DetectDrift(ctx, conn, schema)
		if err != nil {
			return nil, err
		}
		for _, d := range drifts {
			rep.add(Problem{Severity: "error", Kind: "schema_changed", Table: d.Table, Message: d.Detail, Remedy: DriftHint(schema, []string{d.Table})})
		}
		err = conn.QueryRow(ctx, "SELECT has_schema_privilege($1, 'USAGE, CREATE')", schema).Scan(&ok)
	} else {
		err = conn.QueryRow(ctx, "SELECT has_database_privilege(current_database(), 'CREATE')").Scan(&ok)
	}
	if err != nil {
		return nil, fmt.Errorf("check privileges: %w", err)
	}
	switch {
	case ok:
	case rep.SchemaExists:
		rep.add(Problem{Severity: "error", Kind: "privilege", Message: fmt.Sprintf("role %s cannot create objects in schema %s", rep.Role, schema),
			Remedy: fmt.Sprintf("GRANT USAGE, CREATE ON SCHEMA %s TO %s", schema, rep.Role)})
	default:
		rep.add(Problem{Severity: "error", Kind: "privilege", Message: fmt.Sprintf("role %s cannot create the capture schema %s", rep.Role, schema),
			Remedy: fmt.Sprintf("GRANT CREATE ON DATABASE <db> TO %s (or create the schema for it: CREATE SCHEMA %s AUTHORIZATION %s)", rep.Role, schema, rep.Role)})
	}
	return captured, nil
}

// checkTables lists the tables install would capture (partitions counted into their root) with
// their keys, sizes and write rates, reports what concerns one table alone, and returns the oids
// of the tables and partitions, for checkBlockers.
func checkTables(ctx context.Context, conn *pgx.Conn, all []*catalog.Table, f catalog.Filter, captured map[string]bool,
	ver pgver.Version, rep *CheckReport) ([]uint32, error) {
	writes, err := tableWrites(ctx, conn)
	if err != nil {
		return nil, err
	}
	var oids []uint32
	for _, t := range all {
		if t.Partition || !f.Match(t) {
			continue
		}
		ct := CheckTable{Table: t.Key(), Kind: "table", Key: t.KeyColumns, KeySource: t.KeySource, Unlogged: t.Unlogged,
			EstRows: t.EstRows, Bytes: t.Bytes, Writes: writes[t.OID], Captured: captured[t.Key()]}
		if ct.Key == nil {
			ct.Key = []string{}
		}
		if t.Kind == "p" {
			ct.Kind = "partitioned"
			if !ver.PartitionedRowTriggers() {
				rep.add(Problem{Severity: "error", Kind: "version", Table: t.Key(), Message: "row triggers on partitioned tables need PostgreSQL 11 or later",
					Remedy: "exclude it with --exclude-table and copy it at cutover"})
			}
		}
		rep.Tables = append(rep.Tables, ct)
		oids = append(oids, t.OID)
	}
	byRoot := map[string]*CheckTable{}
	for i := range rep.Tables {
		byRoot[rep.Tables[i].Table] = &rep.Tables[i]
	}
	tables := map[string]*catalog.Table{}
	for _, t := range all {
		tables[t.Key()] = t
		if r := byRoot[rootKey(t)]; t.Partition && r != nil {
			r.Partitions++
			r.EstRows += t.EstRows
			r.Bytes += t.Bytes
			r.Writes += writes[t.OID]
			r.Unlogged = r.Unlogged || t.Unlogged
			oids = append(oids, t.OID)
		}
	}
	return oids, checkEachTable(ctx, conn, tables, rep)
}

// rootKey is the key of t's partition root ("" when t has none).
func rootKey(t *catalog.Table) string {
	if t.Root == nil {
		return ""
	}
	return t.Root.Key()
}

// checkEachTable reports, per table to capture, its write rate, how a keyless one is captured,
// and an unlogged one.
func checkEachTable(ctx context.Context, conn *pgx.Conn, tables map[string]*catalog.Table, rep *CheckReport) error {
	secs := time.Since(rep.StatsSince).Seconds()
	for i := range rep.Tables {
		ct := &rep.Tables[i]
		if secs > 0 {
			ct.WritesPerSec = float64(ct.Writes) / secs
		}
		if len(ct.Key) == 0 {
			if err := checkKeyless(ctx, conn, ct, tables[ct.Table], rep); err != nil {
				return err
			}
		}
		if ct.Unlogged {
			rep.add(Problem{Severity: "warning", Kind: "unlogged", Table: ct.Table,
				Message: "unlogged table: its rows are not in WAL, so a fork or standby holds it empty; capture itself works",
				Remedy:  "copy it from the primary (not from a fork), or ALTER TABLE ... SET LOGGED before the migration"})
		}
	}
	return nil
}

// checkLargeObjects counts the large objects (not captured by triggers: pgdelta lo-sync copies
// them) and refuses when the role cannot read some.
func checkLargeObjects(ctx context.Context, conn *pgx.Conn, rep *CheckReport) error {
	st, err := lobj.ReadStats(ctx, conn)
	if err != nil {
		return err
	}
	rep.LargeObjects, rep.LargeObjectBytes = st.Objects, st.Bytes
	if st.Objects > 0 {
		rep.add(Problem{Severity: "info", Kind: "large_objects", Table: lobj.Table, Message: st.Summary()})
	}
	if ue := st.UnreadableError(rep.Role); ue != nil {
		rep.add(Problem{Severity: "error", Kind: "large_objects", Table: lobj.Table, Message: ue.Error(), Remedy: ue.Remedy()})
	}
	return nil
}

// checkKeyless reports a table without a key: refused when it cannot be captured, else how its
// changes are found and what they cost.
func checkKeyless(ctx context.Context, conn *pgx.Conn, ct *CheckTable, t *catalog.Table, rep *CheckReport) error {
	remedy := fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (...), or a unique index over NOT NULL columns", quotedKey(ct.Table))
	if why := keylessBlocker(t); why != "" {
		rep.add(Problem{Severity: "error", Kind: "uncapturable", Table: ct.Table, Message: why,
			Remedy: remedy + fmt.Sprintf("; or leave its rows out with --exclude-table-data %s and move them yourself at cutover", ct.Table)})
		return nil
	}
	l, err := FindKeylessLookup(ctx, conn, t.OID)
	if err != nil {
		return err
	}
	ct.Keyless = &l
	p := Problem{Severity: "info", Kind: "keyless", Table: ct.Table, Message: keylessNote(l, ct.EstRows, fmt.Sprintf("%.1f MB", float64(ct.Bytes)/1e6))}
	if l.Index == "" && ct.EstRows >= KeylessScanWarnRows {
		p.Severity = "warning"
		p.Remedy = remedy + "; or CREATE INDEX CONCURRENTLY ON " + quotedKey(ct.Table) + " (<a NOT NULL column with many distinct values>)"
	}
	rep.add(p)
	return nil
}

// KeylessScanWarnRows: a keyless table this big without a usable index is reported as a warning.
const KeylessScanWarnRows = 100000

func quotedKey(key string) string {
	t, err := parseKey(key)
	if err != nil {
		return key
	}
	return t.String()
}

// tableWrites returns inserted+updated+deleted rows per table since the statistics reset.
func tableWrites(ctx context.Context, conn *pgx.Conn) (map[uint32]int64, error) {
	rows, err := conn.Query(ctx, "SELECT relid, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables")
	if err != nil {
		return nil, fmt.Errorf("read table statistics: %w", err)
	}
	m := map[uint32]int64{}
	var oid uint32
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&oid, &n}, func() error { m[oid] = n; return nil }); err != nil {
		return nil, fmt.Errorf("read table statistics: %w", err)
	}
	return m, nil
}

func checkTablePrivileges(ctx context.Context, conn *pgx.Conn, all []*catalog.Table, f catalog.Filter, ver pgver.Version, rep *CheckReport) error {
	partitions := map[string]int{}
	for _, ct := range rep.Tables {
		partitions[ct.Table] = ct.Partitions
	}
	for _, t := range all {
		if !f.Match(t) {
			continue
		}
		var trig, sel, own bool
		if err := conn.QueryRow(ctx, `SELECT has_table_privilege($1::oid, 'TRIGGER'), has_table_privilege($1::oid, 'SELECT'), pg_has_role(relowner, 'USAGE')
  FROM pg_class WHERE oid = $1`, t.OID).Scan(&trig, &sel, &own); err != nil {
			return fmt.Errorf("check privileges on %s: %w", t.Key(), err)
		}
		if !trig && !t.Partition {
			rep.add(Problem{Severity: "error", Kind: "privilege", Table: t.Key(), Message: fmt.Sprintf("role %s may not create triggers on it", rep.Role),
				Remedy: fmt.Sprintf("run as its owner, or GRANT TRIGGER ON %s TO %s", t.String(), rep.Role)})
		} else if !trig && t.Partition {
			rep.add(Problem{Severity: "error", Kind: "privilege", Table: t.Key(), Message: fmt.Sprintf("role %s may not create the TRUNCATE trigger on this partition", rep.Role),
				Remedy: fmt.Sprintf("GRANT TRIGGER ON %s TO %s", t.String(), rep.Role)})
		} else if !own && !t.Partition {
			rep.add(Problem{Severity: "warning", Kind: "privilege", Table: t.Key(), Message: "not the owner: the capture triggers stay ENABLE ORIGIN, so writes made with session_replication_role = replica are not captured",
				Remedy: "run pgtrig install as the table's owner"})
		} else if t.Kind == "p" && partitions[t.Key()] > 0 && !ver.EnableClonedTriggers() && !rep.Superuser {
			rep.add(Problem{Severity: "warning", Kind: "privilege", Table: t.Key(), Message: clonedOriginNote(ver),
				Remedy: "run pgtrig install as a superuser, or make sure no writer uses session_replication_role = replica"})
		}
		if !sel {
			rep.add(Problem{Severity: "error", Kind: "privilege", Table: t.Key(), Message: fmt.Sprintf("role %s may not read it, so it cannot be copied or caught up", rep.Role),
				Remedy: fmt.Sprintf("GRANT SELECT ON %s TO %s", t.String(), rep.Role)})
		}
	}
	return nil
}

// checkBlockers finds sessions that would make CREATE TRIGGER wait: transactions holding a lock
// that conflicts with SHARE ROW EXCLUSIVE on a selected table for longer than longTx,
// anti-wraparound vacuums (which do not yield), and long transactions in general.
func checkBlockers(ctx context.Context, conn *pgx.Conn, oids []uint32, longTx time.Duration, rep *CheckReport) error {
	rows, err := conn.Query(ctx, `
SELECT DISTINCT n.nspname || '.' || c.relname, l.mode, a.pid, coalesce(a.backend_type, ''), coalesce(a.usename::text, ''),
  extract(epoch FROM now() - a.xact_start)::float8, coalesce(a.query, ''),
  age(c.relfrozenxid) > current_setting('autovacuum_freeze_max_age')::bigint
FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.relation = ANY($1) AND l.pid <> pg_backend_pid()
  AND l.mode IN ('RowExclusiveLock','ShareUpdateExclusiveLock','ShareLock','ShareRowExclusiveLock','ExclusiveLock','AccessExclusiveLock')
ORDER BY 1, 3`, oids)
	if err != nil {
		return fmt.Errorf("list lock holders: %w", err)
	}
	type holder struct {
		table, mode, btype, user, query string
		pid                             int32
		age                             *float64
		wrap                            bool
	}
	var hs []holder
	var h holder
	if _, err := pgx.ForEachRow(rows, []any{&h.table, &h.mode, &h.pid, &h.btype, &h.user, &h.age, &h.query, &h.wrap}, func() error {
		hs = append(hs, h)
		return nil
	}); err != nil {
		return fmt.Errorf("list lock holders: %w", err)
	}
	for _, h := range hs {
		if h.btype == "autovacuum worker" {
			if h.wrap || containsFold(h.query, "to prevent wraparound") {
				rep.add(Problem{Severity: "error", Kind: "wraparound_vacuum", Table: h.table,
					Message: fmt.Sprintf("an anti-wraparound autovacuum (pid %d) is running on it and will not yield its lock", h.pid),
					Remedy:  "wait for it to finish (pg_stat_progress_vacuum shows progress), or exclude the table for now and re-run install later"})
			}
			continue
		}
		switch {
		case h.age == nil:
			rep.add(Problem{Severity: "warning", Kind: "lock_holder", Table: h.table,
				Message: fmt.Sprintf("session %d (%s) holds %s; its transaction age is not visible to this role", h.pid, h.user, h.mode),
				Remedy:  "grant pg_read_all_stats to see it; install waits at most --lock-timeout per try for it"})
		case *h.age > longTx.Seconds():
			rep.add(Problem{Severity: "error", Kind: "lock_holder", Table: h.table,
				Message: fmt.Sprintf("session %d (%s) holds %s in a transaction open for %s", h.pid, h.user, h.mode, (time.Duration(*h.age) * time.Second).Round(time.Second)),
				Remedy:  fmt.Sprintf("let it finish, or end it: SELECT pg_terminate_backend(%d)", h.pid)})
		}
	}
	// Long transactions anywhere: they do not block install but hold back vacuum of the delta tables.
	rows, err = conn.Query(ctx, `SELECT pid, coalesce(usename::text, ''), extract(epoch FROM now() - xact_start)::float8, coalesce(state, '')
FROM pg_stat_activity WHERE xact_start < now() - $1::interval AND pid <> pg_backend_pid() AND backend_type = 'client backend' ORDER BY xact_start`,
		fmt.Sprintf("%d milliseconds", longTx.Milliseconds()))
	if err != nil {
		return fmt.Errorf("list long transactions: %w", err)
	}
	var pid int32
	var user, state string
	var age float64
	_, err = pgx.ForEachRow(rows, []any{&pid, &user, &age, &state}, func() error {
		rep.add(Problem{Severity: "warning", Kind: "long_transaction",
			Message: fmt.Sprintf("session %d (%s, %s) has had a transaction open for %s", pid, user, state, (time.Duration(age) * time.Second).Round(time.Second)),
			Remedy:  "if it touches a captured table, install waits for it; consider ending it before installing"})
		return nil
	})
	if err != nil {
		return fmt.Errorf("list long transactions: %w", err)
	}
	return nil
}
