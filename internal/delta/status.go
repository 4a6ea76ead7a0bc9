package delta

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catchup"
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
	LagSeconds    float64 `json:"lag_s"`        // source time since the applied snapshot, 0 when caught up
	LagKnown      bool    `json:"lag_known"`    // false when nothing was applied yet and the copy's snapshot time is not recorded
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
	pos, err := catchup.TargetPosition(ctx, dst, stateSchema)
	if err != nil {
		return st, err
	}
	if pos.Position == "" {
		return st, catchup.ErrNoPosition
	}
	st.Position, st.Origin = pos.Position, pos.Origin
	a, ok, err := state.ReadApply(ctx, dst, stateSchema)
	if err != nil {
		return st, err
	}
	st.LastError = a.LastError // also recorded by a run that failed before its first batch
	if ok {
		st.RowsPerSec, st.Batches, st.Rows = a.RowsPerSec, a.Batches, a.Rows
		st.LastApplied = a.UpdatedAt.UTC().Format(time.RFC3339)
	}
	p, err := catchup.ParseSnapshot(pos.Position)
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
	return st, st.readLag(ctx, src, a, ok)
}

// readLag sets the lag: 0 when caught up, else source time since the applied snapshot. Before the
// first applied batch it is unknown: the copy's position records no snapshot time.
func (st *Status) readLag(ctx context.Context, src *pgx.Conn, a state.Apply, applied bool) error {
	if st.CaughtUp {
		st.LagKnown = true
		return nil
	}
	since := a.SourceTime
	if since.IsZero() {
		since = a.UpdatedAt
	}
	if !applied || since.IsZero() {
		return nil
	}
	var now time.Time
	if err := src.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&now); err != nil {
		return fmt.Errorf("read source clock: %w", err)
	}
	st.LagSeconds, st.LagKnown = now.Sub(since).Seconds(), true
	return nil
}

// readRegistry counts the registered targets and checks the position against the prune horizon.
func (st *Status) readRegistry(ctx context.Context, src *pgx.Conn, captureSchema string) error {
	regs, horizon, err := catchup.ListTargets(ctx, src, captureSchema)
	if err != nil {
		return err
	}
	st.Targets = len(regs)
	var pe *catchup.PrunedError
	if err := catchup.Holds(st.Position, horizon); errors.As(err, &pe) {
		st.PrunedPast = horizon
		st.LastError = err.Error()
	} else if err != nil {
		return err
	}
	return nil
}
