package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/ident"
)

// Queryer is what a connection and a transaction have in common.
type Queryer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Apply is the target's record of how far pgdelta apply has come.
type Apply struct {
	Position   string    // snapshot text of the last applied batch's end
	Batches    int64     // batches applied so far
	Rows       int64     // upserts + deletes applied so far
	UpdatedAt  time.Time // target clock at the last batch
	SourceTime time.Time // source clock at the last batch's snapshot (zero if unknown)
	RowsPerSec float64   // recent apply rate
	LastError  string
}

// EnsureApply creates the state schema (Ensure) and the apply_position columns pgdelta adds.
func EnsureApply(ctx context.Context, conn *pgx.Conn, schema string) error {
	if err := Ensure(ctx, conn, schema); err != nil {
		return err
	}
	q := fmt.Sprintf(`ALTER TABLE %[1]s.apply_position ADD COLUMN IF NOT EXISTS source_time timestamptz;
ALTER TABLE %[1]s.apply_position ADD COLUMN IF NOT EXISTS rows_per_sec double precision`, quoteSchema(schema))
	if _, err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("extend %s.apply_position on target: %w", schema, err)
	}
	return nil
}

// ReadApply returns the apply state; ok is false when nothing was applied yet (or no state exists),
// and then a may still carry the LastError of a run that failed before its first batch.
func ReadApply(ctx context.Context, q Queryer, schema string) (a Apply, ok bool, err error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", quoteSchema(schema)+".apply_position").Scan(&exists); err != nil {
		return a, false, fmt.Errorf("read apply position: %w", err)
	}
	if !exists {
		return a, false, nil
	}
	var src *time.Time
	var rate *float64
	var lastErr *string
	err = q.QueryRow(ctx, fmt.Sprintf(`SELECT position, batches, rows, updated_at,
  (to_jsonb(a)->>'source_time')::timestamptz, (to_jsonb(a)->>'rows_per_sec')::float8, last_error
FROM %s.apply_position a WHERE id = 1`, quoteSchema(schema))).Scan(&a.Position, &a.Batches, &a.Rows, &a.UpdatedAt, &src, &rate, &lastErr)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("read apply position: %w", err)
	}
	if src != nil {
		a.SourceTime = *src
	}
	if rate != nil {
		a.RowsPerSec = *rate
	}
	if lastErr != nil {
		a.LastError = *lastErr
	}
	if a.Position == "" { // only an error was recorded (WriteApplyError before any batch)
		return Apply{LastError: a.LastError}, false, nil
	}
	return a, true, nil
}

// WriteApply moves the apply position to pos inside the batch's transaction tx, adding rows to the
// counters and clearing last_error. EnsureApply must have run.
func WriteApply(ctx context.Context, tx Queryer, schema, pos string, rows int64, sourceTime time.Time, rowsPerSec float64) error {
	var st *time.Time
	if !sourceTime.IsZero() {
		st = &sourceTime
	}
	_, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.apply_position AS a (id, position, batches, rows, updated_at, source_time, rows_per_sec, last_error)
VALUES (1, $1, 1, $2, now(), $3, $4, NULL)
ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position, batches = a.batches + 1, rows = a.rows + EXCLUDED.rows,
  updated_at = now(), source_time = EXCLUDED.source_time, rows_per_sec = EXCLUDED.rows_per_sec, last_error = NULL`, quoteSchema(schema)),
		pos, rows, st, rowsPerSec)
	if err != nil {
		return fmt.Errorf("write apply position: %w", err)
	}
	return nil
}

// WriteApplyError records msg as the last error, keeping the position. When nothing was applied
// yet it records the error on a row with an empty position, which ReadApply reads as "no position".
func WriteApplyError(ctx context.Context, q Queryer, schema, msg string) error {
	_, err := q.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.apply_position AS a (id, position, batches, rows, last_error)
VALUES (1, '', 0, 0, $1) ON CONFLICT (id) DO UPDATE SET last_error = EXCLUDED.last_error`, quoteSchema(schema)), msg)
	return err
}

func quoteSchema(s string) string {
	if s == "" {
		s = DefaultSchema
	}
	return ident.Quote(s)
}
