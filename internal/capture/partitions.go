package capture

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

// uncoveredSQL lists partitions of captured tables without the TRUNCATE capture trigger ($1):
// partition (quoted), its captured root (unquoted key, quoted), and whether the session's role
// owns the partition (then the trigger is made ENABLE ALWAYS, as install does).
const uncoveredSQL = `WITH RECURSIVE p(root, relid) AS (
  SELECT ct.table_name, i.inhrelid FROM %[1]s.capture_tables ct JOIN pg_catalog.pg_inherits i ON i.inhparent = ct.relid
  UNION ALL SELECT p.root, i.inhrelid FROM pg_catalog.pg_inherits i JOIN p ON i.inhparent = p.relid)
SELECT n.nspname::text, c.relname::text, p.root, pg_catalog.pg_has_role(c.relowner, 'USAGE')
FROM p JOIN pg_catalog.pg_class c ON c.oid = p.relid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relispartition AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = p.relid AND t.tgname = $1)
ORDER BY 1, 2`

// CoverNewPartitions adds the TRUNCATE capture trigger to every partition of a captured table
// created (or attached) since install, one partition per transaction waiting at most
// lockTimeout for its lock, and returns the partitions it covered. The row trigger reaches new
// partitions by cloning, the TRUNCATE trigger does not: pgdelta calls this before each batch, so
// a TRUNCATE of a new partition is captured from then on, and one made earlier only removed rows
// whose changes are still waiting in the delta table (the batch reads them as deleted).
func CoverNewPartitions(ctx context.Context, conn *pgx.Conn, schema string, lockTimeout time.Duration, log io.Writer) ([]string, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	if lockTimeout <= 0 {
		lockTimeout = DefaultLockTimeout
	}
	type part struct {
		on, root ident.Table
		owner    bool
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(uncoveredSQL, ident.Quote(schema)), TruncateTriggerName(schema))
	if err != nil {
		return nil, fmt.Errorf("list new partitions of captured tables: %w", err)
	}
	var parts []part
	var p part
	var root string
	if _, err := pgx.ForEachRow(rows, []any{&p.on.Schema, &p.on.Name, &root, &p.owner}, func() error {
		t, err := ident.ParseKey(root)
		p.root = t
		parts = append(parts, p)
		return err
	}); err != nil {
		return nil, fmt.Errorf("list new partitions of captured tables: %w", err)
	}
	var done []string
	for _, p := range parts {
		sql := lockTimeoutSQL(lockTimeout) + truncateTriggerSQL(schema, p.on, p.root, p.owner, false)
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, sql); return err }); err != nil {
			return done, fmt.Errorf("add TRUNCATE capture to new partition %s of %s: %w", p.on.Key(), p.root.Key(), err)
		}
		if log != nil {
			fmt.Fprintf(log, "pgdelta: %s: truncate capture added to new partition %s\n", p.root.Key(), p.on.Key())
		}
		done = append(done, p.on.Key())
	}
	return done, nil
}
