// Package catalog reads what pgferry needs to know about tables from the system catalogs.
package catalog

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgver"
)

// Column is one stored (not generated, not dropped) column.
type Column struct {
	Name    string `json:"name"`
	Type    string `json:"type"` // format_type() text, e.g. "numeric(12,2)"
	NotNull bool   `json:"not_null,omitempty"`
	// Identity: = on this column holds exactly when the text forms are equal (IdentitySQL).
	Identity bool `json:"-"`
}

// Table describes one ordinary or partitioned table.
type Table struct {
	ident.Table
	OID        uint32       `json:"-"`
	Kind       string       `json:"kind"`           // "r" ordinary, "p" partitioned
	Partition  bool         `json:"partition"`      // a partition of another table
	Root       *ident.Table `json:"root,omitempty"` // top partitioned ancestor, for partitions
	Inherited  bool         `json:"inherited"`      // has inheritance (non-partition) children: read with ONLY
	Unlogged   bool         `json:"unlogged"`       // relpersistence = 'u'
	Columns    []Column     `json:"columns"`        // stored columns in attnum order
	KeyColumns []string     `json:"key,omitempty"`  // primary key, else unique index over NOT NULL columns
	KeySource  string       `json:"key_source"`     // "primary key", "unique index NAME", or ""
	EstRows    int64        `json:"est_rows"`       // reltuples (0 when never analyzed and empty)
	Bytes      int64        `json:"bytes"`          // pg_relation_size of the main fork
}

// ColumnNames returns the stored column names in attnum order.
func (t *Table) ColumnNames() []string {
	n := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		n[i] = c.Name
	}
	return n
}

// Leaf reports whether the table holds rows itself (not a partitioned parent).
func (t *Table) Leaf() bool { return t.Kind == "r" }

// tablesSQL lists tables outside system schemas with their stored columns and best key: the
// primary key, else the narrowest valid unique index over NOT NULL stored columns, by its key
// columns only (INCLUDE columns are not part of the key). {{stored}} and {{generated}} are the
// server version's conditions on pg_attribute (no attgenerated before 12).
const tablesSQL = `
WITH t AS (
  SELECT c.oid, n.nspname, c.relname, c.relkind::text AS kind, c.relispartition, c.relpersistence = 'u' AS unlogged,
         greatest(c.reltuples, 0)::bigint AS est_rows, pg_relation_size(c.oid) AS bytes,
         EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class ch ON ch.oid = i.inhrelid WHERE i.inhparent = c.oid AND NOT ch.relispartition) AS inherited
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
    AND n.nspname NOT LIKE 'pg\_temp%' AND NOT n.nspname = ANY($1::text[])
)
SELECT t.oid, t.nspname, t.relname, t.kind, t.relispartition, t.unlogged, t.est_rows, t.bytes, t.inherited,
  (SELECT coalesce(array_agg(a.attname ORDER BY a.attnum), '{}') FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND {{stored}}),
  (SELECT coalesce(array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum), '{}') FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND {{stored}}),
  (SELECT coalesce(array_agg(a.attnotnull ORDER BY a.attnum), '{}') FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND {{stored}}),
  (SELECT coalesce(array_agg({{identity}} ORDER BY a.attnum), '{}') FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND {{stored}}),
  k.cols, k.src,
  r.nspname, r.relname
FROM t
LEFT JOIN LATERAL (
  SELECT (SELECT array_agg(a.attname ORDER BY o.ord) FROM unnest((i.indkey::int2[])[0:i.indnkeyatts-1]) WITH ORDINALITY o(attnum, ord) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = o.attnum) AS cols,
         CASE WHEN i.indisprimary THEN 'primary key' ELSE 'unique index ' || ic.relname END AS src
  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
  WHERE i.indrelid = t.oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
    AND NOT (0 = ANY((i.indkey::int2[])[0:i.indnkeyatts-1]))
    AND NOT EXISTS (SELECT 1 FROM unnest((i.indkey::int2[])[0:i.indnkeyatts-1]) u(attnum) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum WHERE NOT a.attnotnull OR {{generated}})
  ORDER BY i.indisprimary DESC, i.indnkeyatts, ic.relname
  LIMIT 1
) k ON true
LEFT JOIN LATERAL (
  WITH RECURSIVE up(relid, depth) AS (
    SELECT t.oid, 0
    UNION ALL
    SELECT i.inhparent, up.depth + 1 FROM up JOIN pg_inherits i ON i.inhrelid = up.relid JOIN pg_class pc ON pc.oid = i.inhrelid WHERE pc.relispartition
  )
  SELECT rn.nspname, rc.relname FROM up JOIN pg_class rc ON rc.oid = up.relid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
  WHERE t.relispartition AND NOT rc.relispartition ORDER BY up.depth DESC LIMIT 1
) r ON true
ORDER BY t.nspname, t.relname`

// ListTables returns every ordinary and partitioned table outside the system schemas and skipSchemas.
func ListTables(ctx context.Context, conn *pgx.Conn, skipSchemas ...string) ([]*Table, error) {
	if skipSchemas == nil {
		skipSchemas = []string{}
	}
	v := pgver.Of(conn)
	q := strings.NewReplacer("{{stored}}", v.StoredColumn("a"), "{{generated}}", v.GeneratedColumn("a"), "{{identity}}", IdentitySQL(v, "a")).Replace(tablesSQL)
	rows, err := conn.Query(ctx, q, skipSchemas)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var out []*Table
	for rows.Next() {
		var (
			t                 Table
			names, types      []string
			notnull, identity []bool
			keyCols           []string
			keySrc, rNs, rRel *string
		)
		if err := rows.Scan(&t.OID, &t.Schema, &t.Name, &t.Kind, &t.Partition, &t.Unlogged, &t.EstRows, &t.Bytes, &t.Inherited,
			&names, &types, &notnull, &identity, &keyCols, &keySrc, &rNs, &rRel); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		for i := range names {
			t.Columns = append(t.Columns, Column{Name: names[i], Type: types[i], NotNull: notnull[i], Identity: identity[i]})
		}
		t.KeyColumns = keyCols
		if keySrc != nil {
			t.KeySource = *keySrc
		}
		if rNs != nil && rRel != nil {
			t.Root = &ident.Table{Schema: *rNs, Name: *rRel}
		}
		out = append(out, &t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return out, nil
}
