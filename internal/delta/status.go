package delta

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/state"
)

// Status is how far the target lags behind the source.
type Status struct {
	Position      string  `json:"position"`
	Origin        string  `json:"origin"`       // where the position comes from: apply, copy
	KeysWaiting   int64   `json:"keys_waiting"` // captured changes not yet applied
	TruncWaiting  int64   `json:"truncates_waiting"`
	TablesWaiting int     `json:"tables_waiting"`
	LagSeconds    float64 `json:"lag_seconds"`  // source time since the applied snapshot, 0 when caught up
	RowsPerSec    float64 `json:"rows_per_sec"` // apply rate of the last batch
	Batches       int64   `json:"batches"`      // batches applied so far
	Rows          int64   `json:"rows"`         // rows applied so far
	LastApplied   string  `json:"last_applied,omitempty"`
	LastError     string  `json:"last_error,omitempty"`
	CaughtUp      bool    `json:"caught_up"`
	Targets       int     `json:"targets"`               // targets registered on the source (pruning waits for each)
	PrunedPast    string  `json:"pruned_past,omitempty"` // the prune horizon, when it passed this target's position
}

// ReadStatus compares the target's position with the source's capture tables.
func ReadStatus(ctx context.Context, src, dst *pgx.Conn, captureSchema, stateSchema string) (Status, error) {
	var st Status
	pos, err := TargetPosition(ctx, dst, stateSchema)
	if err != nil {
		return st, err
	}
	if pos.Position == "" {
		return st, ErrNoPosition
	}
	st.Position, st.Origin = pos.Position, pos.Origin
	a, ok, err := state.ReadApply(ctx, dst, stateSchema)
	if err != nil {
		return st, err
	}
	if ok {
		st.RowsPerSec, st.Batches, st.Rows, st.LastError = a.RowsPerSec, a.Batches, a.Rows, a.LastError
		st.LastApplied = a.UpdatedAt.UTC().Format(time.RFC3339)
	}
	p, err := ParseSnapshot(pos.Position)
	if err != nil {
		return st, err
	}
	cs := ident.Quote(orDefault(captureSchema))
	rows, err := src.Query(ctx, "SELECT delta_table FROM "+cs+".capture_tables ORDER BY table_name")
	if err != nil {
		return st, fmt.Errorf("read %s.capture_tables on source: %w", orDefault(captureSchema), err)
	}
	deltas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return st, fmt.Errorf("read capture_tables: %w", err)
	}
	cond := "txid >= $1 AND NOT txid_visible_in_snapshot(txid, $2::text::txid_snapshot)"
	xmin := fmt.Sprint(p.Xmin)
	for _, d := range deltas {
		var n int64
		if err := src.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s.%s WHERE %s", cs, ident.Quote(d), cond), xmin, pos.Position).Scan(&n); err != nil {
			return st, fmt.Errorf("count waiting changes in %s: %w", d, err)
		}
		st.KeysWaiting += n
		if n > 0 {
			st.TablesWaiting++
		}
	}
	if err := src.QueryRow(ctx, "SELECT count(*) FROM "+cs+".truncates WHERE "+cond, xmin, pos.Position).Scan(&st.TruncWaiting); err != nil {
		return st, fmt.Errorf("count waiting truncates: %w", err)
	}
	if err := st.readRegistry(ctx, src, captureSchema); err != nil {
		return st, err
	}
	st.CaughtUp = st.KeysWaiting == 0 && st.TruncWaiting == 0 && st.PrunedPast == ""
	if !st.CaughtUp {
		var now time.Time
		if err := src.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&now); err != nil {
			return st, fmt.Errorf("read source clock: %w", err)
		}
		since := a.SourceTime
		if since.IsZero() {
			since = a.UpdatedAt
		}
		if !since.IsZero() {
			st.LagSeconds = now.Sub(since).Seconds()
		}
	}
	return st, nil
}

// readRegistry counts the registered targets and checks the position against the prune horizon.
func (st *Status) readRegistry(ctx context.Context, src *pgx.Conn, captureSchema string) error {
	regs, horizon, err := ListTargets(ctx, src, captureSchema)
	if err != nil {
		return err
	}
	st.Targets = len(regs)
	var pe *PrunedError
	if err := holds(st.Position, horizon); errors.As(err, &pe) {
		st.PrunedPast = horizon
		st.LastError = err.Error()
	} else if err != nil {
		return err
	}
	return nil
}
