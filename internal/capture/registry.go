package capture

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

// LoadRegistry returns every captured table, ordered by name. Run it inside a transaction to
// read the registry as of that transaction's snapshot. A missing capture schema is an error.
func LoadRegistry(ctx context.Context, q Querier, schema string) ([]Captured, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	// Columns added by later releases (keyless, columns, partitions) are read through to_jsonb, so
	// a registry made before them (a migration in progress when pgferry was upgraded) still reads.
	rows, err := q.Query(ctx, fmt.Sprintf(`SELECT table_name, relid, delta_table, key_columns, key_types,
  coalesce((to_jsonb(ct) ->> 'keyless')::boolean, false),
  installed_txid, installed_snapshot, installed_at,
  coalesce(to_jsonb(ct) -> 'columns', 'null'), coalesce(to_jsonb(ct) -> 'partitions', 'null')
FROM %s.capture_tables ct ORDER BY table_name`, ident.Quote(schema)))
	if err != nil {
		return nil, fmt.Errorf("read capture registry %s.capture_tables: %w", schema, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Captured, error) {
		var c Captured
		var name string
		if err := r.Scan(&name, &c.Relid, &c.DeltaTable, &c.KeyColumns, &c.KeyTypes, &c.Keyless, &c.InstalledTxid, &c.InstalledSnapshot, &c.InstalledAt,
			&c.Columns, &c.Partitions); err != nil {
			return c, err
		}
		t, err := ident.ParseKey(name)
		if err != nil {
			return c, err
		}
		c.Table = t
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read capture registry %s.capture_tables: %w", schema, err)
	}
	return out, nil
}

// Position returns a capture position from which catch-up covers every captured table: the
// snapshot "x:x:" where x is the oldest xmin of the tables' install snapshots. Everything
// visible in it committed before any of the installs, so nothing captured is skipped (and
// re-reading a few changes twice is harmless). Empty when nothing is captured.
func Position(ctx context.Context, q Querier, schema string) (string, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	rows, err := q.Query(ctx, fmt.Sprintf(`SELECT coalesce(min(txid_snapshot_xmin(installed_snapshot::txid_snapshot))::text, '')
  FROM %s.capture_tables`, ident.Quote(schema)))
	if err != nil {
		return "", fmt.Errorf("compute capture position: %w", err)
	}
	x, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("compute capture position: %w", err)
	}
	if x == "" {
		return "", nil
	}
	return x + ":" + x + ":", nil
}

func parseKey(s string) (ident.Table, error) { return ident.ParseKey(s) }
