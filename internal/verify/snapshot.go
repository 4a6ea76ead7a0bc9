package verify

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/pgver"
	"github.com/pgferry/pgferry/internal/retry"
)

// side is one database read from one exported snapshot by a small pool of workers.
type side struct {
	role     dbconn.Role
	url      string
	exporter *pgx.Conn // holds the exported snapshot open; also used for catalog reads
	snapshot string    // pg_export_snapshot() id
	position string    // txid_current_snapshot()::text of the snapshot
	version  pgver.Version
	pool     chan *pgx.Conn
}

// connect opens one of pgverify's sessions. search_path is pg_catalog, as pg_dump sets it: the
// names reg* values print as (compared on both sides) and the types format_type() names are then
// qualified the same way whatever search_path a role or database sets.
func connect(ctx context.Context, url string, r dbconn.Role) (*pgx.Conn, error) {
	return dbconn.Connect(ctx, url, r, dbconn.Options{AppName: "pgferry-pgverify", Extra: map[string]string{"search_path": "pg_catalog"}})
}

// openSide connects, exports a snapshot and prepares a pool of jobs workers.
func openSide(ctx context.Context, url string, r dbconn.Role, jobs int) (*side, error) {
	c, err := connect(ctx, url, r)
	if err != nil {
		return nil, err
	}
	s := &side{role: r, url: url, exporter: c, version: pgver.Of(c), pool: make(chan *pgx.Conn, jobs)}
	for range jobs {
		s.pool <- nil // connected lazily
	}
	if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("begin snapshot on %s: %w", r, err)
	}
	if err := c.QueryRow(ctx, "SELECT pg_export_snapshot(), txid_current_snapshot()::text").Scan(&s.snapshot, &s.position); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("export snapshot on %s: %w", r, err)
	}
	return s, nil
}

// close ends the snapshot and every worker connection.
func (s *side) close() {
	if s == nil {
		return
	}
	ctx := context.Background()
	for range cap(s.pool) {
		if c := <-s.pool; c != nil {
			c.Close(ctx)
		}
	}
	s.exporter.Close(ctx)
}

// inSnapshot runs fn in a read-only transaction on the side's exported snapshot, on a pooled
// connection; a lost connection is replaced and fn redone (fn must be idempotent).
func (s *side) inSnapshot(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.withConn(ctx, func(c *pgx.Conn) error {
		return pgx.BeginTxFunc(ctx, c, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+s.snapshot+"'"); err != nil {
				return fmt.Errorf("import snapshot: %w", err)
			}
			return fn(tx)
		})
	})
}

// fresh runs fn in a new read-only REPEATABLE READ transaction that sees the current state.
func (s *side) fresh(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.withConn(ctx, func(c *pgx.Conn) error {
		return pgx.BeginTxFunc(ctx, c, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
	})
}

func (s *side) withConn(ctx context.Context, fn func(c *pgx.Conn) error) error {
	var c *pgx.Conn
	select {
	case c = <-s.pool:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { s.pool <- c }()
	return retry.Default.Do(ctx, func(ctx context.Context) error {
		if c == nil || c.IsClosed() {
			nc, err := connect(ctx, s.url, s.role)
			if err != nil {
				return err
			}
			c = nc
		}
		err := fn(c)
		if err != nil && retry.Transient(err) {
			c.Close(context.Background())
			c = nil
		}
		return err
	})
}
