package schema

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/sqlstmt"
)

// captureKeysSQL lists, from the capture registry in schema %[1]s, the unique indexes capture
// uses as the key of tables without a primary key (by their key columns: indkey also holds the
// INCLUDE columns, after the first indnkeyatts), and the btree indexes leading with a NOT
// NULL column of tables captured as whole rows (catch-up finds the changed rows by them).
const captureKeysSQL = `SELECT ic.relname::text FROM %[1]s.capture_tables ct
  JOIN pg_index i ON i.indrelid = ct.relid AND i.indisunique AND NOT i.indisprimary
  JOIN pg_class ic ON ic.oid = i.indexrelid
  WHERE NOT EXISTS (SELECT FROM pg_index p WHERE p.indrelid = ct.relid AND p.indisprimary)
    AND (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = ct.relid AND a.attnum = k.attnum
         WHERE k.ord <= i.indnkeyatts) = ct.key_columns::text[]
UNION
SELECT ic.relname::text FROM %[1]s.capture_tables ct
  JOIN pg_index i ON i.indrelid = ct.relid AND i.indpred IS NULL
  JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
  JOIN pg_attribute a ON a.attrelid = ct.relid AND a.attnum = i.indkey[0] AND a.attnotnull
  WHERE ct.keyless`

// NoCaptureError is returned by CaptureKeys when the source has no capture registry.
type NoCaptureError struct{ Schema string }

func (e *NoCaptureError) Error() string {
	return fmt.Sprintf("capture is not installed on the source: no %s.capture_tables", ident.Quote(e.Schema))
}

// CaptureKeys returns the names of the indexes that catch-up needs on the target besides the
// primary keys: the unique keys capture uses for tables without a primary key, and the btree
// indexes that find the rows of tables captured whole.
func CaptureKeys(ctx context.Context, conn *pgx.Conn, captureSchema string) (map[string]bool, error) {
	cs := ident.Quote(captureSchema)
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", cs+".capture_tables").Scan(&ok); err != nil {
		return nil, fmt.Errorf("look for the capture registry: %w", err)
	}
	if !ok {
		return nil, &NoCaptureError{Schema: captureSchema}
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(captureKeysSQL, cs))
	if err != nil {
		return nil, fmt.Errorf("read the indexes capture uses: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read the indexes capture uses: %w", err)
	}
	keys := make(map[string]bool, len(names))
	for _, n := range names {
		keys[n] = true
	}
	return keys, nil
}

// captureKeysFromSource fills o.KeyIndexes from the source's capture registry.
func captureKeysFromSource(ctx context.Context, url string, o *Options) error {
	conn, err := dbconn.Connect(ctx, url, dbconn.Source, dbconn.Options{AppName: "pgferry-pgschema"})
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	cs := o.CaptureSchema
	if cs == "" {
		cs = ident.DefaultSchema
	}
	o.KeyIndexes, err = CaptureKeys(ctx, conn, cs)
	return err
}

// Owners returns the roles that a script's ALTER ... OWNER TO statements hand objects of the
// given schema to, by pg_dump's header (an object's schema), sorted and each once.
func Owners(sc *Script, schema string) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range sc.Entries {
		for _, c := range e.Chunks {
			objSchema := e.Header.Schema
			if !e.HasHeader {
				objSchema = c.Stmt.Table.Schema
			}
			if c.Stmt.Kind != sqlstmt.KOwner || objSchema != schema || c.Stmt.Owner == "" || seen[c.Stmt.Owner] {
				continue
			}
			seen[c.Stmt.Owner] = true
			out = append(out, c.Stmt.Owner)
		}
	}
	sort.Strings(out)
	return out
}
