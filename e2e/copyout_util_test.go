package e2e

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

var ctxb = context.Background()

func connectURL(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctxb, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
