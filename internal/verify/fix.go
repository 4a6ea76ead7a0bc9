package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/delta"
	"github.com/pgferry/pgferry/internal/deltarec"
)

// fixPosition is the position the repair batch claims for begin/commit. It must never move the
// target's apply position forward (that would skip changes pgdelta has not applied yet), so it
// is where pgdelta stands on the target (its apply position, else the copy's position); with no
// pgferry state at all (a one-off copy), the snapshot the repair rows were read in.
func fixPosition(ctx context.Context, dst *side, stateSchema, readAt string) (from, to string, err error) {
	err = dst.fresh(ctx, func(tx pgx.Tx) error {
		pos, err := delta.TargetPosition(ctx, tx, stateSchema)
		if err != nil {
			return err
		}
		if pos.Position != "" {
			from, to = pos.Position, pos.Position
		} else {
			from, to = "", readAt
		}
		return nil
	})
	if err != nil {
		return "", "", fmt.Errorf("read target position for --emit-fix: %w", err)
	}
	return from, to, nil
}

// emitFix writes one pgdelta batch that makes every differing key on the target what it is on
// the source now: the current source row as an upsert, or a delete where the source has none.
func emitFix(ctx context.Context, src, dst *side, stateSchema string, results []*Result, w io.Writer) error {
	type tableRecs struct {
		p    *pair
		keys [][]string
	}
	var todo []tableRecs
	for _, r := range results {
		if r.Status == StatusDiffer && len(r.Diffs) > 0 {
			todo = append(todo, tableRecs{r.pair, diffKeys(r.Diffs)})
		}
	}
	var recs []deltarec.Record
	var readAt string
	err := src.fresh(ctx, func(tx pgx.Tx) error {
		recs = recs[:0]
		if err := tx.QueryRow(ctx, "SELECT txid_current_snapshot()::text").Scan(&readAt); err != nil {
			return err
		}
		for _, t := range todo {
			rows, err := fetchRows(ctx, tx, t.p, t.keys)
			if err != nil {
				return fmt.Errorf("read source rows of %s: %w", t.p.Name, err)
			}
			for _, k := range t.keys {
				if f, ok := rows[joinKey(k)]; ok {
					row := map[string]*string{}
					for i, c := range t.p.Cols {
						row[c.Name] = f.raw[i]
					}
					recs = append(recs, deltarec.Record{Op: deltarec.OpUpsert, Table: t.p.Name, Row: row})
				} else {
					key := map[string]*string{}
					for i, c := range t.p.Key {
						key[c.Name] = &k[i]
					}
					recs = append(recs, deltarec.Record{Op: deltarec.OpDelete, Table: t.p.Name, Key: key})
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("emit fix: %w", err)
	}
	from, to, err := fixPosition(ctx, dst, stateSchema, readAt)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	n := int64(len(recs))
	if err := enc.Encode(deltarec.Record{Op: deltarec.OpBegin, From: from, To: to}); err != nil {
		return fmt.Errorf("write fix: %w", err)
	}
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write fix: %w", err)
		}
	}
	if err := enc.Encode(deltarec.Record{Op: deltarec.OpCommit, To: to, Rows: &n}); err != nil {
		return fmt.Errorf("write fix: %w", err)
	}
	return nil
}
