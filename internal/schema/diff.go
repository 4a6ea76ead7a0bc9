package schema

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/pgver"
)

// Catalog maps object kind -> object name -> definition.
type Catalog map[string]map[string]string

func (c Catalog) count() int {
	n := 0
	for _, m := range c {
		n += len(m)
	}
	return n
}

// Difference is one object that is missing on one side or defined differently.
type Difference struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Change string `json:"change"` // "missing_on_target", "extra_on_target", "different"
	Source string `json:"source,omitempty"`
	Target string `json:"target,omitempty"`
}

func (d Difference) String() string {
	switch d.Change {
	case "missing_on_target":
		return fmt.Sprintf("%s %s: missing on target (source: %s)", d.Kind, d.Name, oneLine(d.Source))
	case "extra_on_target":
		return fmt.Sprintf("%s %s: extra on target (target: %s)", d.Kind, d.Name, oneLine(d.Target))
	}
	return fmt.Sprintf("%s %s: different\n  source: %s\n  target: %s", d.Kind, d.Name, oneLine(d.Source), oneLine(d.Target))
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// Compare lists the differences between two catalogs, sorted by kind and name.
func Compare(src, dst Catalog) []Difference {
	var out []Difference
	kinds := map[string]bool{}
	for k := range src {
		kinds[k] = true
	}
	for k := range dst {
		kinds[k] = true
	}
	for k := range kinds {
		a, b := src[k], dst[k]
		for name, def := range a {
			other, ok := b[name]
			switch {
			case !ok:
				out = append(out, Difference{Kind: k, Name: name, Change: "missing_on_target", Source: def})
			case other != def:
				out = append(out, Difference{Kind: k, Name: name, Change: "different", Source: def, Target: other})
			}
		}
		for name, def := range b {
			if _, ok := a[name]; !ok {
				out = append(out, Difference{Kind: k, Name: name, Change: "extra_on_target", Target: def})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// readCatalogs reads the source's catalog (ignoring schema capture) and the target's (ignoring
// schema state), keeps what f selects (filterSnaps), and settles the views the two servers only
// print differently (alignViews).
func readCatalogs(ctx context.Context, srcURL, dstURL, capture, state string, f catalog.Filter) (src, dst Catalog, err error) {
	var srcVer pgver.Version
	var s *snap
	err = withCatalog(ctx, srcURL, dbconn.Source, capture, func(conn *pgx.Conn, sn *snap) error {
		s, srcVer = sn, pgver.Of(conn)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	err = withCatalog(ctx, dstURL, dbconn.Target, state, func(conn *pgx.Conn, d *snap) error {
		if err := filterSnaps(f, s, d); err != nil {
			return err
		}
		src, dst = s.cat, d.cat
		if srcVer.UnqualifiedViewColumns() != pgver.Of(conn).UnqualifiedViewColumns() {
			return alignViews(ctx, conn, src, dst)
		}
		return nil
	})
	return src, dst, err
}

// withCatalog reads the catalog and the tables of url's database and passes them to fn with the
// connection.
func withCatalog(ctx context.Context, url string, role dbconn.Role, ignore string, fn func(*pgx.Conn, *snap) error) error {
	conn, err := dbconn.Connect(ctx, url, role, dbconn.Options{AppName: "pgferry-pgschema"})
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	cat, sc, err := snapshot(ctx, conn, ignore)
	if err != nil {
		return fmt.Errorf("read %s catalog: %w", role, err)
	}
	tables, err := catalog.ListTables(ctx, conn, ignore)
	if err != nil {
		return fmt.Errorf("read %s catalog: %w", role, err)
	}
	return fn(conn, &snap{cat: cat, scopes: sc, tables: tables})
}

// nspFilter keeps user schemas; $1 is pgferry's schema on this side.
const nspFilter = `n.nspname <> $1 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'`

// Snapshot reads the catalog of the connected database, ignoring schema ignore and pgferry_* triggers.
func Snapshot(ctx context.Context, conn *pgx.Conn, ignore string) (Catalog, error) {
	cat, _, err := snapshot(ctx, conn, ignore)
	return cat, err
}

// snapshot is Snapshot with the schema and the table each object belongs to.
func snapshot(ctx context.Context, conn *pgx.Conn, ignore string) (Catalog, scopes, error) {
	// Unqualified names only for pg_catalog: every definition names schemas explicitly.
	if _, err := conn.Exec(ctx, "SET search_path = pg_catalog"); err != nil {
		return nil, nil, fmt.Errorf("set search_path: %w", err)
	}
	cat, scopes := Catalog{}, scopes{}
	for _, q := range catalogQueries(pgver.Of(conn)) {
		rows, err := conn.Query(ctx, q.sql, ignore)
		if err != nil {
			return nil, nil, fmt.Errorf("list %ss: %w", q.kind, err)
		}
		m, sm := map[string]string{}, map[string]objScope{}
		var name, def string
		var sc objScope
		_, err = pgx.ForEachRow(rows, []any{&name, &def, &sc.schema, &sc.table.Schema, &sc.table.Name}, func() error {
			m[name], sm[name] = def, sc
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("list %ss: %w", q.kind, err)
		}
		cat[q.kind], scopes[q.kind] = m, sm
	}
	return cat, scopes, nil
}

// catalogQueries are snapshot's queries, one per kind of object: each row is the object's name,
// its definition, its schema and the schema and name of the table it belongs to (empty if none).
// $1 is pgferry's schema on this side.
func catalogQueries(v pgver.Version) []struct{ kind, sql string } {
	// Every supported version (11+) has attidentity, prokind and partitioning; the rest depends
	// on this server's version.
	generated := "''"
	if v.GeneratedColumns() {
		generated = "a.attgenerated::text"
	}
	// Before 12 pg_get_triggerdef spells the same trigger EXECUTE PROCEDURE.
	triggerdef := "pg_get_triggerdef(t.oid)"
	if !v.TriggerDefExecuteFunction() {
		triggerdef = "regexp_replace(pg_get_triggerdef(t.oid), ' EXECUTE PROCEDURE ', ' EXECUTE FUNCTION ')"
	}
	seqSQL := `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
	   format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' increment ' || s.seqincrement || ' min ' || s.seqmin ||
	   ' max ' || s.seqmax || ' cache ' || s.seqcache || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END ||
	   coalesce(' owned by ' || (SELECT quote_ident(dn.nspname) || '.' || quote_ident(dc.relname) || '.' || quote_ident(da.attname)
	      FROM pg_depend d JOIN pg_class dc ON dc.oid = d.refobjid JOIN pg_namespace dn ON dn.oid = dc.relnamespace
	      JOIN pg_attribute da ON da.attrelid = d.refobjid AND da.attnum = d.refobjsubid
	      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i') AND d.refclassid = 'pg_class'::regclass LIMIT 1), '')
	 , n.nspname, coalesce(o.nspname, ''), coalesce(o.relname, '')
	 FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	 LEFT JOIN LATERAL (SELECT dn.nspname, dc.relname FROM pg_depend d JOIN pg_class dc ON dc.oid = d.refobjid JOIN pg_namespace dn ON dn.oid = dc.relnamespace
	    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i') AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 LIMIT 1) o ON true
	 WHERE ` + nspFilter
	queries := []struct{ kind, sql string }{
		{"schema", `SELECT quote_ident(n.nspname), 'schema', n.nspname, '', '' FROM pg_namespace n WHERE ` + nspFilter},
		{"extension", `SELECT e.extname, 'schema ' || quote_ident(n.nspname), '', '', '' FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' AND n.nspname <> $1`},
		{"table", `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
		   CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table' END ||
		   CASE c.relpersistence WHEN 'u' THEN ' unlogged' ELSE '' END ||
		   coalesce(' partition by ' || CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END, '') ||
		   coalesce(' partition of ' || (SELECT string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno) FROM pg_inherits i WHERE i.inhrelid = c.oid) || ' ' || pg_get_expr(c.relpartbound, c.oid), '') ||
		   coalesce(' inherits ' || (SELECT string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno) FROM pg_inherits i WHERE i.inhrelid = c.oid), ''),
		   n.nspname, n.nspname, c.relname
		 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'f') AND ` + nspFilter},
		{"column", `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(a.attname),
		   '#' || row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) || ' ' || format_type(a.atttypid, a.atttypmod) ||
		   CASE WHEN a.attnotnull THEN ' not null' ELSE '' END ||
		   coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') ||
		   CASE a.attidentity WHEN 'a' THEN ' generated always as identity' WHEN 'd' THEN ' generated by default as identity' ELSE '' END ||
		   CASE ` + generated + ` WHEN 's' THEN ' stored' ELSE '' END ||
		   CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN ' collate ' || (SELECT quote_ident(co.collname) FROM pg_collation co WHERE co.oid = a.attcollation) ELSE '' END,
		   n.nspname, n.nspname, c.relname
		 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		 JOIN pg_type t ON t.oid = a.atttypid
		 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f', 'v', 'm') AND ` + nspFilter},
		{"index", `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), pg_get_indexdef(c.oid) ||
		   CASE WHEN i.indisclustered THEN ' (clustered)' ELSE '' END || CASE WHEN NOT i.indisvalid THEN ' (INVALID)' ELSE '' END,
		   n.nspname, n.nspname, (SELECT r.relname FROM pg_class r WHERE r.oid = i.indrelid)
		 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ` + nspFilter},
		{"constraint", `SELECT quote_ident(n.nspname) || '.' || coalesce(quote_ident(r.relname), format_type(o.contypid, NULL)) || '.' || quote_ident(o.conname),
		   pg_get_constraintdef(o.oid), n.nspname, CASE WHEN r.relname IS NULL THEN '' ELSE n.nspname END, coalesce(r.relname, '')
		 FROM pg_constraint o JOIN pg_namespace n ON n.oid = o.connamespace LEFT JOIN pg_class r ON r.oid = o.conrelid
		 WHERE ` + nspFilter},
		{"sequence", seqSQL},
		{"view", `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
		   CASE c.relkind WHEN 'v' THEN 'view ' ELSE 'materialized view ' END || pg_get_viewdef(c.oid, true),
		   n.nspname, n.nspname, c.relname
		 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND ` + nspFilter},
		{"function", `SELECT quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')',
		   CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid)
		        ELSE p.prokind::text || ' returns ' || pg_get_function_result(p.oid) END,
		   n.nspname, '', ''
		 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		 WHERE NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
		   AND p.proname !~ ('^' || '` + CapturePrefix + `') AND ` + nspFilter},
		{"trigger", `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(t.tgname),
		   ` + triggerdef + ` || CASE t.tgenabled WHEN 'D' THEN ' (disabled)' WHEN 'R' THEN ' (replica)' WHEN 'A' THEN ' (always)' ELSE '' END,
		   n.nspname, n.nspname, c.relname
		 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		 JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
		 WHERE ` + v.UserTrigger("t") + ` AND t.tgname !~ ('^' || '` + CapturePrefix + `') AND t.tgname NOT IN ($1 || '_capture', $1 || '_truncate')
		   AND pn.nspname <> $1 AND ` + nspFilter},
	}
	return queries
}
