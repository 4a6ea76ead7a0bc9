package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// QueryInt runs a query returning one integer on url, failing the test on error.
func QueryInt(t testing.TB, url, sql string) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}
