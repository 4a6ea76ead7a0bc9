package capture

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

// baseDDL creates the capture schema, the registry, the selections (newtables.go), the truncate log, the marks table, the write
// fence (a sequence: fence.go) and the shared TRUNCATE trigger function (%[2]s: the fence check;
// %[3]s: the registry's name as a literal). Every statement is idempotent; none locks an application table.
const baseDDL = `CREATE SCHEMA IF NOT EXISTS %[1]s;
CREATE TABLE IF NOT EXISTS %[1]s.capture_tables (
  table_name         text PRIMARY KEY,
  relid              oid NOT NULL,
  delta_table        text NOT NULL,
  key_columns        text[] NOT NULL,
  key_types          text[] NOT NULL,
  keyless            boolean NOT NULL DEFAULT false,
  installed_txid     bigint NOT NULL,
  installed_snapshot text NOT NULL,
  installed_at       timestamptz NOT NULL DEFAULT now(),
  columns            text[],
  partitions         text[]
);
DO $pgferry$ BEGIN -- added in later releases; ALTER TABLE only when missing, as it locks the registry
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = %[3]s::pg_catalog.regclass AND attname = 'keyless') THEN
    ALTER TABLE %[1]s.capture_tables ADD COLUMN keyless boolean NOT NULL DEFAULT false;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = %[3]s::pg_catalog.regclass AND attname = 'columns') THEN
    ALTER TABLE %[1]s.capture_tables ADD COLUMN columns text[], ADD COLUMN partitions text[];
  END IF;
END $pgferry$;
CREATE TABLE IF NOT EXISTS %[1]s.capture_selections (
  kind               text NOT NULL CHECK (kind IN ('install', 'ignore')),
  schemas            text[] NOT NULL DEFAULT '{}',
  exclude_schemas    text[] NOT NULL DEFAULT '{}',
  tables             text[] NOT NULL DEFAULT '{}',
  exclude_tables     text[] NOT NULL DEFAULT '{}',
  exclude_table_data text[] NOT NULL DEFAULT '{}',
  known_tables       oid[] NOT NULL DEFAULT '{}',
  recorded_at        timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS %[1]s.truncates (
  table_name     text NOT NULL,
  txid           bigint NOT NULL,
  captured_table text
);
CREATE INDEX IF NOT EXISTS truncates_txid ON %[1]s.truncates (txid);
CREATE TABLE IF NOT EXISTS %[1]s.marks (
  id         bigserial PRIMARY KEY,
  snapshot   text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE SEQUENCE IF NOT EXISTS %[1]s.fence;
CREATE OR REPLACE FUNCTION %[1]s.capture_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $pgferry$
BEGIN
%[2]s  INSERT INTO %[1]s.truncates (table_name, txid, captured_table)
  VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, pg_catalog.txid_current(), TG_ARGV[0]);
  RETURN NULL;
END
$pgferry$;
`

// BaseSQL returns the idempotent DDL of the capture schema's shared objects.
func BaseSQL(schema string) string {
	return fmt.Sprintf(baseDDL, ident.Quote(schema), FenceCheckSQL(schema), ident.Literal(ident.Quote(schema)+".capture_tables"))
}

// EnsureSchema creates the capture schema and its shared tables if missing.
func EnsureSchema(ctx context.Context, conn *pgx.Conn, schema string) error {
	if schema == "" {
		schema = DefaultSchema
	}
	// A concurrent installer may race us on CREATE ... IF NOT EXISTS; the loser retries once.
	var err error
	for i := 0; i < 3; i++ {
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, BaseSQL(schema))
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "duplicate key") {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("create capture schema %s: %w", schema, err)
	}
	return nil
}

// SchemaExists reports whether the capture registry exists.
func SchemaExists(ctx context.Context, q Querier, schema string) (bool, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	rows, err := q.Query(ctx, "SELECT to_regclass($1) IS NOT NULL", ident.Quote(schema)+".capture_tables")
	if err != nil {
		return false, fmt.Errorf("look for capture schema: %w", err)
	}
	ok, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[bool])
	if err != nil {
		return false, fmt.Errorf("look for capture schema: %w", err)
	}
	return ok, nil
}

// TriggerName is the name of the row trigger that records changes into the schema's delta tables;
// tables with statement-level capture carry TriggerName+"_ins", "_upd", "_del" and the row
// trigger "_key" (old keys of rows whose key changed) instead.
func TriggerName(schema string) string { return limitName(schema + sufRow) }

// TriggerNames are the names of every trigger capture may create on a table with the capture
// schema schema: either design's, and the TRUNCATE trigger.
func TriggerNames(schema string) []string {
	if schema == "" {
		schema = DefaultSchema
	}
	return append(captureTriggerNames(schema), TruncateTriggerName(schema))
}

// TruncateTriggerName is the name of the statement trigger that records TRUNCATE.
func TruncateTriggerName(schema string) string { return limitName(schema + "_truncate") }

// DeltaName is the delta table of the table with oid relid.
func DeltaName(relid uint32) string { return fmt.Sprintf("d_%d", relid) }

// FuncName is the capture trigger function of the table with oid relid.
func FuncName(relid uint32) string { return fmt.Sprintf("f_%d", relid) }

func limitName(s string) string {
	if len(s) > 63 {
		return s[len(s)-63:]
	}
	return s
}
