package catalog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// RegTypes are the OID alias types: their binary form is the raw OID, which names another object
// (or none) on another server; their text form is the object's name.
var RegTypes = []string{"regclass", "regtype", "regproc", "regprocedure", "regoper", "regoperator",
	"regconfig", "regdictionary", "regnamespace", "regrole", "regcollation"}

// TextOnlyTables returns the tables (by Key) with a column that binary COPY cannot carry between
// two servers. Binary COPY input checks the type OIDs embedded in arrays and composites, and
// those of user-defined types differ between databases; a type without send/receive functions
// has no binary form at all; the reg* types (RegTypes, and arrays of them) travel as raw OIDs.
// Safe: other built-in types (OID < 16384, their arrays included) with binary I/O, enums (sent
// as their label), and domains over safe types.
func TextOnlyTables(ctx context.Context, conn *pgx.Conn, tables []*Table) (map[string]bool, error) {
	oids := make([]uint32, len(tables))
	byOID := map[uint32]string{}
	for i, t := range tables {
		oids[i] = t.OID
		byOID[t.OID] = t.Key()
	}
	rows, err := conn.Query(ctx, `
		WITH RECURSIVE base(attrelid, typ, depth) AS (
		  SELECT a.attrelid, a.atttypid, 0 FROM pg_attribute a
		  WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
		UNION ALL
		  SELECT b.attrelid, t.typbasetype, b.depth + 1 FROM base b JOIN pg_type t ON t.oid = b.typ
		  WHERE t.typtype = 'd' AND b.depth < 20)
		SELECT DISTINCT b.attrelid FROM base b JOIN pg_type t ON t.oid = b.typ
		WHERE t.typtype <> 'd' AND (NOT (t.typtype = 'e' OR (t.oid < 16384 AND t.typsend <> 0 AND t.typreceive <> 0))
		  OR EXISTS (SELECT FROM pg_type r WHERE r.oid = CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE t.oid END
		    AND r.typnamespace = 'pg_catalog'::regnamespace AND r.typname::text = ANY($2::text[])))`, oids, RegTypes)
	if err != nil {
		return nil, fmt.Errorf("check column types for binary COPY: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return nil, fmt.Errorf("check column types for binary COPY: %w", err)
	}
	out := map[string]bool{}
	for _, id := range ids {
		out[byOID[id]] = true
	}
	return out, nil
}
