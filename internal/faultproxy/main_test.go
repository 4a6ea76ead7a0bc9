package faultproxy

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopSharedTCP()
	pgtest.StopAll()
	os.Exit(code)
}

func connect(ctx context.Context, url string) (*pgx.Conn, error) { return pgx.Connect(ctx, url) }
