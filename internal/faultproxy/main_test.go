package faultproxy

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(ctx context.Context, url string) (*pgx.Conn, error) { return pgx.Connect(ctx, url) }
