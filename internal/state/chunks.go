package state

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/ident"
)

// PlanChunk is one row of copy_plan.
type PlanChunk struct {
	ID    int
	Kind  string
	Lower *string
	Upper *string
}

// Same reports whether two chunks have the same id, kind and bounds.
func (c PlanChunk) Same(o PlanChunk) bool {
	eq := func(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return c.ID == o.ID && c.Kind == o.Kind && eq(c.Lower, o.Lower) && eq(c.Upper, o.Upper)
}

func q(schema string) string {
	if schema == "" {
		schema = DefaultSchema
	}
	return ident.Quote(schema)
}

// DB is what both *pgx.Conn and pgx.Tx provide.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Plan returns the stored copy_plan of table (unquoted schema.table), ordered by chunk.
func Plan(ctx context.Context, conn DB, schema, table string) ([]PlanChunk, error) {
	rows, err := conn.Query(ctx, "SELECT chunk, kind, lower_bound, upper_bound FROM "+q(schema)+".copy_plan WHERE table_name = $1 ORDER BY chunk", table)
	if err != nil {
		return nil, fmt.Errorf("read copy plan of %s: %w", table, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PlanChunk, error) {
		var c PlanChunk
		err := r.Scan(&c.ID, &c.Kind, &c.Lower, &c.Upper)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read copy plan of %s: %w", table, err)
	}
	return out, nil
}

// ReplacePlan stores plan as table's copy_plan, replacing any previous one.
func ReplacePlan(ctx context.Context, tx DB, schema, table string, plan []PlanChunk) error {
	if _, err := tx.Exec(ctx, "DELETE FROM "+q(schema)+".copy_plan WHERE table_name = $1", table); err != nil {
		return fmt.Errorf("store copy plan of %s: %w", table, err)
	}
	for _, c := range plan {
		if _, err := tx.Exec(ctx, "INSERT INTO "+q(schema)+".copy_plan (table_name, chunk, kind, lower_bound, upper_bound) VALUES ($1, $2, $3, $4, $5)",
			table, c.ID, c.Kind, c.Lower, c.Upper); err != nil {
			return fmt.Errorf("store copy plan of %s: %w", table, err)
		}
	}
	return nil
}

// DoneChunks returns the chunk ids of table recorded in copy_chunks.
func DoneChunks(ctx context.Context, tx DB, schema, table string) (map[int]bool, error) {
	rows, err := tx.Query(ctx, "SELECT chunk FROM "+q(schema)+".copy_chunks WHERE table_name = $1", table)
	if err != nil {
		return nil, fmt.Errorf("read copied chunks of %s: %w", table, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("read copied chunks of %s: %w", table, err)
	}
	done := make(map[int]bool, len(ids))
	for _, id := range ids {
		done[int(id)] = true
	}
	return done, nil
}

// ChunkSnapshots returns, per table, the snapshots its recorded chunks were read under.
func ChunkSnapshots(ctx context.Context, tx DB, schema string) (map[string][]string, error) {
	rows, err := tx.Query(ctx, "SELECT DISTINCT table_name, snapshot FROM "+q(schema)+".copy_chunks")
	if err != nil {
		return nil, fmt.Errorf("read the snapshots of copied chunks: %w", err)
	}
	out := map[string][]string{}
	var table, snap string
	if _, err := pgx.ForEachRow(rows, []any{&table, &snap}, func() error {
		out[table] = append(out[table], snap)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the snapshots of copied chunks: %w", err)
	}
	return out, nil
}

// ChunkDone records a loaded chunk; call it in the transaction that loaded the chunk's rows.
// It fails (unique violation) if the chunk was already recorded, which rolls that load back.
func ChunkDone(ctx context.Context, tx DB, schema, table string, chunk int, snapshot string, rows, bytes int64) error {
	_, err := tx.Exec(ctx, "INSERT INTO "+q(schema)+".copy_chunks (table_name, chunk, snapshot, rows, bytes) VALUES ($1, $2, $3, $4, $5)",
		table, chunk, snapshot, rows, bytes)
	if err != nil {
		return fmt.Errorf("record chunk %d of %s as done: %w", chunk, table, err)
	}
	return nil
}

// ClearTable deletes table's copy_chunks and copy_plan rows.
func ClearTable(ctx context.Context, tx DB, schema, table string) error {
	for _, t := range []string{"copy_chunks", "copy_plan"} {
		if _, err := tx.Exec(ctx, "DELETE FROM "+q(schema)+"."+t+" WHERE table_name = $1", table); err != nil {
			return fmt.Errorf("clear %s of %s: %w", t, table, err)
		}
	}
	return nil
}

// CopyPosition returns the position catch-up must start from after the copy: the oldest
// snapshot (by txid_snapshot_xmin) any chunk was read under. ok is false when no chunk is
// recorded (or the state schema does not exist).
func CopyPosition(ctx context.Context, conn *pgx.Conn, schema string) (string, bool, error) {
	exists, err := Exists(ctx, conn, schema)
	if err != nil {
		return "", false, fmt.Errorf("read copy position: %w", err)
	}
	if !exists {
		return "", false, nil
	}
	var pos string
	err = conn.QueryRow(ctx, "SELECT snapshot FROM "+q(schema)+".copy_chunks ORDER BY txid_snapshot_xmin(snapshot::txid_snapshot), done_at LIMIT 1").Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read copy position: %w", err)
	}
	return pos, true, nil
}
