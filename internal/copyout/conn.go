package copyout

import (
	"bufio"
	"context"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgferry/pgferry/internal/dbconn"
)

// readBufferSize is the socket read buffer of a worker connection: a COPY that arrives faster
// than it is consumed is read in large pieces, not pgx's default 8 KiB per system call.
const readBufferSize = 256 << 10

// connectWorker opens a worker's source connection (dbconn's settings, a larger read buffer).
func connectWorker(ctx context.Context, url string, netTimeout time.Duration) (*pgx.Conn, error) {
	opts := dbconn.Options{AppName: "pgferry-pgcopyout", NetTimeout: netTimeout}
	cfg, err := dbconn.ParseConfig(url, opts)
	if err != nil {
		return nil, err
	}
	cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, readBufferSize), w)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		// dbconn.Connect explains a failed connection (and hides passwords); this one failed
		// the same way a moment ago.
		return dbconn.Connect(ctx, url, dbconn.Source, opts)
	}
	return conn, nil
}
