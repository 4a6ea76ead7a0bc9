package capture

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

// RemovedPartition is a partition recorded at install (the registry's partitions) that is no
// longer in its captured table's partition tree: detached, or dropped.
type RemovedPartition struct {
	Table     string // the captured root, unquoted schema.table
	Entry     string // its registry entry, "oid schema.table"
	Partition string // unquoted schema.table as recorded at install (the target's name for it)
	Dropped   bool   // no table with that oid any more; else it was detached and still exists
	// Nested: detached but still a partition, of a table outside the tree: it went with a
	// detached sub-partitioned partition (whose own removal covers it), or was attached elsewhere.
	Nested   bool
	Quoted   string   // detached: its quoted name now
	Xmin     string   // detached: the xmin of its pg_class row (the detaching transaction, or a later ALTER); pending: of its pg_inherits row
	Columns  []string // detached: its columns now, in attnum order
	Readable bool     // detached: the session's role may SELECT from it
}

// removedSQL lists, for registry entries ($1 roots, $2 their oids, $3 entries "oid schema.table"),
// those whose oid is no longer in the root's partition tree, with what the catalog holds of the
// oid; nested is a partition whose parent is outside the tree. A partition whose DETACH ...
// CONCURRENTLY is pending (14+, interrupted after its first transaction) counts as detached: a
// snapshot that sees the pending mark no longer reads its rows through the parent.
const removedSQL = `WITH RECURSIVE u(root, relid, entry, part) AS (
  SELECT r, o, e, split_part(e, ' ', 1)::oid FROM unnest($1::text[], $2::oid[], $3::text[]) x(r, o, e)),
tree(relid, member) AS (SELECT DISTINCT relid, relid FROM u
  UNION SELECT t.relid, i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree t ON i.inhparent = t.member
  WHERE NOT coalesce((to_jsonb(i) ->> 'inhdetachpending')::boolean, false))
SELECT u.root, u.entry, c.oid IS NULL, coalesce(c.relispartition AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits pi
    JOIN tree t ON t.relid = u.relid AND t.member = pi.inhparent WHERE pi.inhrelid = c.oid), false),
  coalesce(quote_ident(n.nspname) || '.' || quote_ident(c.relname), ''), coalesce((SELECT pi.xmin::text FROM pg_catalog.pg_inherits pi WHERE pi.inhrelid = c.oid
    AND coalesce((to_jsonb(pi) ->> 'inhdetachpending')::boolean, false)), c.xmin::text, ''),
  coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{}'),
  c.oid IS NOT NULL AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
FROM u LEFT JOIN pg_catalog.pg_class c ON c.oid = u.part AND c.relkind IN ('r', 'p')
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT EXISTS (SELECT 1 FROM tree t WHERE t.relid = u.relid AND t.member = u.part)
ORDER BY 1, 4, u.part`

// RemovedPartitions returns the partitions recorded at install that q's snapshot no longer sees
// in their captured table's tree (compared by oid, so a renamed partition is not removed), per
// table: the detached ones not nested below another first, then the nested ones, each by oid.
func RemovedPartitions(ctx context.Context, q Querier, schema string) ([]RemovedPartition, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	reg, err := LoadRegistry(ctx, q, schema)
	if err != nil {
		return nil, err
	}
	var roots, entries []string
	var oids []uint32
	for _, c := range reg {
		for _, p := range c.Partitions {
			roots, oids, entries = append(roots, c.Table.Key()), append(oids, c.Relid), append(entries, p)
		}
	}
	if len(entries) == 0 {
		return nil, nil
	}
	rows, err := q.Query(ctx, removedSQL, roots, oids, entries)
	if err != nil {
		return nil, fmt.Errorf("look for partitions detached or dropped since install: %w", err)
	}
	var out []RemovedPartition
	var r RemovedPartition
	if _, err := pgx.ForEachRow(rows, []any{&r.Table, &r.Entry, &r.Dropped, &r.Nested, &r.Quoted, &r.Xmin, &r.Columns, &r.Readable}, func() error {
		_, r.Partition, _ = strings.Cut(r.Entry, " ")
		out = append(out, r)
		r.Columns = nil
		return nil
	}); err != nil {
		return nil, fmt.Errorf("look for partitions detached or dropped since install: %w", err)
	}
	return out, nil
}

// ForgetPartitions removes the entries of removed partitions from their tables' registry rows,
// so later batches no longer see them as removed, and returns how many it removed. Removing an
// entry already gone is a no-op.
func ForgetPartitions(ctx context.Context, conn *pgx.Conn, schema string, removed []RemovedPartition) (int64, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	var n int64
	q := fmt.Sprintf("UPDATE %s.capture_tables SET partitions = array_remove(partitions, $2) WHERE table_name = $1 AND $2 = ANY(partitions)", ident.Quote(schema))
	for _, r := range removed {
		tag, err := conn.Exec(ctx, q, r.Table, r.Entry)
		if err != nil {
			return n, fmt.Errorf("forget partition %s of %s in %s.capture_tables: %w", r.Partition, r.Table, schema, err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}
