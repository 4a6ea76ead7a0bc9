// Package state keeps pgferry's own bookkeeping on the target: copied chunks and the apply position.
package state

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

// DefaultSchema is the target schema holding pgferry's state.
const DefaultSchema = ident.DefaultSchema

// ddl creates the state tables; every statement is idempotent.
//
// copy_chunks: one row per chunk loaded by pgcopyin, committed in the chunk's own transaction.
// copy_plan:   the chunk boundaries of each table as first planned, so a re-run reuses them.
// apply_position: the single row pgdelta apply advances in each batch's transaction.
const ddl = `
CREATE SCHEMA IF NOT EXISTS %[1]s;
CREATE TABLE IF NOT EXISTS %[1]s.copy_chunks (
  table_name  text        NOT NULL,  -- unquoted schema.table as in the stream header
  chunk       integer     NOT NULL,  -- chunk number within the table's plan
  snapshot    text        NOT NULL,  -- txid_current_snapshot() text of the snapshot it was read under
  rows        bigint      NOT NULL,
  bytes       bigint      NOT NULL,
  done_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (table_name, chunk)
);
CREATE TABLE IF NOT EXISTS %[1]s.copy_plan (
  table_name  text    NOT NULL,
  chunk       integer NOT NULL,
  kind        text    NOT NULL,      -- 'all', 'key' or 'ctid'
  lower_bound text,                  -- inclusive lower bound (key text form or ctid), null = unbounded
  upper_bound text,                  -- exclusive upper bound, null = unbounded
  PRIMARY KEY (table_name, chunk)
);
CREATE TABLE IF NOT EXISTS %[1]s.apply_position (
  id          integer     PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  position    text        NOT NULL,  -- snapshot text of the last applied batch's end
  batches     bigint      NOT NULL DEFAULT 0,
  rows        bigint      NOT NULL DEFAULT 0,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  last_error  text
);`

// Ensure creates the state schema and tables if missing.
func Ensure(ctx context.Context, conn *pgx.Conn, schema string) error {
	if schema == "" {
		schema = DefaultSchema
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(ddl, ident.Quote(schema))); err != nil {
		return fmt.Errorf("create state schema %s on target: %w", schema, err)
	}
	return nil
}

// Exists reports whether the state schema's tables exist on the target.
func Exists(ctx context.Context, conn *pgx.Conn, schema string) (bool, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	var ok bool
	err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ident.Quote(schema)+".copy_chunks").Scan(&ok)
	return ok, err
}
