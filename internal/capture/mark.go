package capture

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

// Mark records txid_current_snapshot() in the marks table and returns it. Everything visible in
// a mark committed before the mark did, so the newest mark found in a fork is a safe catch-up
// position for the primary.
func Mark(ctx context.Context, conn *pgx.Conn, schema string) (string, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	ok, err := SchemaExists(ctx, conn, schema)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("record mark: capture schema %s not found (run 'pgtrig install' first)", schema)
	}
	var snap string
	err = conn.QueryRow(ctx, fmt.Sprintf("INSERT INTO %s.marks (snapshot) VALUES (txid_current_snapshot()::text) RETURNING snapshot", ident.Quote(schema))).Scan(&snap)
	if err != nil {
		return "", fmt.Errorf("record mark: %w", err)
	}
	return snap, nil
}
