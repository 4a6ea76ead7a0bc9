package capture

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgver"
)

// A table without a primary key or unique index over NOT NULL columns is captured as whole rows:
// its delta table holds every stored column of each row written (INSERT's new rows, DELETE's old
// ones, UPDATE's old and new), as columns c1..cn in key_columns order (so no table column can
// clash with txid), and pgdelta tells the target how many copies of each such row the source
// holds as of the batch (docs/capture.md, "## Tables without a key").

// KeylessSource is the key source reported for a table without a key.
const KeylessSource = "whole rows"

// MaxKeylessColumns is the widest table captured as whole rows: its delta table has one column more.
const MaxKeylessColumns = 1599

// DeltaColumns names the delta table's columns that hold key_columns: the key columns' own
// names, or c1..cn for a table without a key.
func DeltaColumns(keyColumns []string, keyless bool) []string {
	if !keyless {
		return keyColumns
	}
	out := make([]string, len(keyColumns))
	for i := range keyColumns {
		out[i] = fmt.Sprintf("c%d", i+1)
	}
	return out
}

func deltaColumns(s tableSpec) []string { return DeltaColumns(s.KeyColumns, s.Keyless) }

// keylessFunctionSQL creates the trigger functions of a table without a key. Row design: DELETE
// and UPDATE record OLD, INSERT and UPDATE record NEW. Statement design: one INSERT ... SELECT
// from the transition tables per statement, both of them for UPDATE.
func keylessFunctionSQL(schema string, s tableSpec) string {
	delta := ident.Quote(schema) + "." + ident.Quote(DeltaName(s.Relid))
	cols := ident.QuoteList(deltaColumns(s)) + ", txid"
	if !s.Statement {
		ins := func(rec string) string {
			return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s, pg_catalog.txid_current());", delta, cols, keyList(s, rec))
		}
		body := fmt.Sprintf(`BEGIN
  IF TG_OP <> 'INSERT' THEN
    %s
  END IF;
  IF TG_OP <> 'DELETE' THEN
    %s
  END IF;
  RETURN NULL;
END
`, ins("OLD"), ins("NEW"))
		return triggerFunctionSQL(schema, FuncName(s.Relid), body)
	}
	sel := func(alias, table string) string {
		return fmt.Sprintf("SELECT %s, pg_catalog.txid_current() FROM %s %s", keyList(s, alias), table, alias)
	}
	body := func(selects string) string {
		return fmt.Sprintf("BEGIN\n  INSERT INTO %s (%s) %s;\n  RETURN NULL;\nEND\n", delta, cols, selects)
	}
	return triggerFunctionSQL(schema, FuncName(s.Relid)+"_i", body(sel("n", "pgferry_new"))) +
		triggerFunctionSQL(schema, FuncName(s.Relid)+"_u", body(sel("n", "pgferry_new")+"\n  UNION ALL "+sel("o", "pgferry_old"))) +
		triggerFunctionSQL(schema, FuncName(s.Relid)+"_d", body(sel("o", "pgferry_old")))
}

// KeylessLookup is how pgdelta finds the changed rows of a table without a key: by an index that
// leads with a NOT NULL column whose = is exact (catalog.IdentitySQL), else by reading the table.
type KeylessLookup struct {
	Index    string  `json:"index,omitempty"`  // btree index used to find a row, "" when none
	Column   string  `json:"column,omitempty"` // its first column
	PerValue float64 `json:"rows_per_value"`   // estimated rows sharing one value of it (-1 unknown)
}

// keylessLookupSQL picks the index with the fewest rows per value of its first column.
const keylessLookupSQL = `SELECT * FROM (SELECT ic.relname::text, a.attname::text,
  coalesce((SELECT CASE WHEN s.n_distinct > 0 THEN greatest(c.reltuples, 1) / s.n_distinct ELSE -1 / s.n_distinct END
     FROM pg_catalog.pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname AND s.n_distinct <> 0), -1)::float8 AS per_value
FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = $1 AND i.indisvalid AND i.indpred IS NULL AND a.attnotnull AND {{identity}}) x
ORDER BY x.per_value < 0, x.per_value, x.relname LIMIT 1`

// FindKeylessLookup returns how changed rows of the keyless table relid are found on the source.
func FindKeylessLookup(ctx context.Context, conn *pgx.Conn, relid uint32) (KeylessLookup, error) {
	q := strings.ReplaceAll(keylessLookupSQL, "{{identity}}", catalog.IdentitySQL(pgver.Of(conn), "a"))
	var l KeylessLookup
	err := conn.QueryRow(ctx, q, relid).Scan(&l.Index, &l.Column, &l.PerValue)
	if errors.Is(err, pgx.ErrNoRows) {
		return KeylessLookup{PerValue: -1}, nil
	}
	if err != nil {
		return l, fmt.Errorf("find index of keyless table %d: %w", relid, err)
	}
	return l, nil
}

// keylessNote describes the capture of a keyless table and what a change to it costs.
func keylessNote(l KeylessLookup, estRows int64, bytes string) string {
	base := "no primary key or unique index over NOT NULL columns: captured as whole rows (the target is told how many copies of each changed row the source holds)"
	if l.Index == "" {
		return base + fmt.Sprintf("; no btree index leads with a NOT NULL column of an exact-equality type, so each batch that changes it reads the whole table on both sides (about %d rows, %s)", estRows, bytes)
	}
	per := "unknown (not analyzed)"
	if l.PerValue >= 0 {
		per = fmt.Sprintf("about %.0f", math.Max(l.PerValue, 1))
	}
	return base + fmt.Sprintf("; a changed row is found by index %s on %s (rows per value: %s), so nothing is scanned: a change costs about 1.3-2.5x what it costs on a keyed table", l.Index, l.Column, per)
}
