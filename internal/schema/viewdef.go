package schema

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// alignViews settles the views whose definitions differ only in how the two servers print them:
// from PostgreSQL 16 pg_get_viewdef leaves the columns of a single-table view unqualified, so a
// 15 source and a 16 target print one view two ways. The target (conn, after Snapshot) prints
// each differing source definition again, as a temporary view in a transaction it rolls back;
// when that reads like the target's own definition, the source's is taken as the same. A
// definition the target cannot print stays a difference.
func alignViews(ctx context.Context, conn *pgx.Conn, src, dst Catalog) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin view comparison on target: %w", err)
	}
	defer tx.Rollback(context.Background())
	for name, def := range src["view"] {
		other, ok := dst["view"][name]
		if !ok || other == def {
			continue
		}
		kind, query := splitViewDef(def)
		otherKind, otherQuery := splitViewDef(other)
		if kind != otherKind {
			continue
		}
		again, err := printOnTarget(ctx, tx, query)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		if again == otherQuery {
			src["view"][name] = other
		}
	}
	return nil
}

// splitViewDef cuts a view's catalog definition into its kind and its query.
func splitViewDef(def string) (kind, query string) {
	for _, k := range []string{"materialized view ", "view "} {
		if q, ok := strings.CutPrefix(def, k); ok {
			return k, q
		}
	}
	return "", def
}

// printOnTarget is the target's pg_get_viewdef of a view over query, created and dropped again
// under a savepoint.
func printOnTarget(ctx context.Context, tx pgx.Tx, query string) (string, error) {
	if _, err := tx.Exec(ctx, "SAVEPOINT pgferry_view"); err != nil {
		return "", err
	}
	defer tx.Exec(ctx, "ROLLBACK TO SAVEPOINT pgferry_view")
	if _, err := tx.Exec(ctx, "CREATE TEMP VIEW pgferry_view AS "+strings.TrimSuffix(strings.TrimSpace(query), ";")); err != nil {
		return "", err
	}
	var out string
	err := tx.QueryRow(ctx, "SELECT pg_get_viewdef('pg_temp.pgferry_view'::regclass, true)").Scan(&out)
	return out, err
}
