package copyout

import (
	"context"
	"fmt"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/state"
)

// targetState is what the target already holds: each table's plan and its loaded chunks.
type targetState struct {
	plans map[string][]Chunk
	done  map[string]map[int]bool
}

// readTargetState reads copy_plan and copy_chunks from the target's state schema (empty when
// the schema does not exist yet).
func readTargetState(ctx context.Context, url, schema string) (*targetState, error) {
	ts := &targetState{plans: map[string][]Chunk{}, done: map[string]map[int]bool{}}
	conn, err := dbconn.Connect(ctx, url, dbconn.Target, dbconn.Options{AppName: "pgferry-pgcopyout"})
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	ok, err := state.Exists(ctx, conn, schema)
	if err != nil {
		return nil, fmt.Errorf("read target state: %w", err)
	}
	if !ok {
		return ts, nil
	}
	q := ident.Quote(schema)
	rows, err := conn.Query(ctx, "SELECT table_name, chunk, kind, lower_bound, upper_bound FROM "+q+".copy_plan ORDER BY table_name, chunk")
	if err != nil {
		return nil, fmt.Errorf("read target copy plan: %w", err)
	}
	for rows.Next() {
		var name string
		var c Chunk
		if err := rows.Scan(&name, &c.ID, &c.Kind, &c.Lower, &c.Upper); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read target copy plan: %w", err)
		}
		ts.plans[name] = append(ts.plans[name], c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read target copy plan: %w", err)
	}
	rows, err = conn.Query(ctx, "SELECT table_name, chunk FROM "+q+".copy_chunks")
	if err != nil {
		return nil, fmt.Errorf("read target copied chunks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var id int
		if err := rows.Scan(&name, &id); err != nil {
			return nil, fmt.Errorf("read target copied chunks: %w", err)
		}
		if ts.done[name] == nil {
			ts.done[name] = map[int]bool{}
		}
		ts.done[name][id] = true
	}
	return ts, rows.Err()
}

// apply reuses the target's plan for tp when it has one and marks its loaded chunks Skip.
// A table split by ctid ranges cannot be finished under a new snapshot (an UPDATE moves a row
// between ranges): for a partly loaded one it returns restart, and the caller plans the table
// afresh and marks it Restart in the header, so pgcopyin empties it and loads it whole.
func (ts *targetState) apply(tp *TablePlan) (restart bool, err error) {
	name := tp.Key()
	if plan, ok := ts.plans[name]; ok && len(plan) > 0 {
		for _, c := range plan {
			if c.Kind == KindKey && len(tp.KeyColumns) == 0 {
				return false, cliutil.WithHint(cliutil.ExitFailure,
					fmt.Errorf("table %s was planned by key ranges in an earlier run but has no usable key now", name),
					"empty that table on the target (pgcopyin --truncate) and re-run")
			}
		}
		chunks := make([]Chunk, len(plan))
		for i, c := range plan {
			c.EstBytes = tp.Bytes / int64(len(plan))
			chunks[i] = c
		}
		tp.Chunks = chunks
	}
	done := ts.done[name]
	n := 0
	for i := range tp.Chunks {
		if done[tp.Chunks[i].ID] {
			tp.Chunks[i].Skip = true
			n++
		}
	}
	if n > 0 && n < len(tp.Chunks) {
		for _, c := range tp.Chunks {
			if c.Kind == KindCtid {
				return true, nil
			}
		}
	}
	return false, nil
}
