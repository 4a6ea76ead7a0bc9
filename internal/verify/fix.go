package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/deltarec"
)

// fixPosition is the position the repair batch claims for begin/commit. It must never move the
// target's apply position forward (that would skip changes pgdelta has not applied yet), so it
// is where pgdelta stands on the target (its apply position, else the copy's position); with no
// pgferry state at all (a one-off copy), the snapshot the repair rows were read in.
func fixPosition(ctx context.Context, dst *side, stateSchema, readAt string) (from, to string, err error) {
	err = dst.fresh(ctx, func(tx pgx.Tx) error {
		pos, err := catchup.TargetPosition(ctx, tx, stateSchema)
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
// the source now: the current source row as an upsert, or a delete where the source has none; for
// a table without a key, each differing row with the number of copies the source holds now.
func emitFix(ctx context.Context, src, dst *side, stateSchema string, results []*Result, w io.Writer) error {
	var todo []*Result
	for _, r := range results {
		if r.Status == StatusDiffer && len(r.Diffs) > 0 {
			todo = append(todo, r)
		}
	}
	var recs []deltarec.Record
	var readAt string
	err := src.fresh(ctx, func(tx pgx.Tx) error {
		recs = recs[:0]
		if err := tx.QueryRow(ctx, "SELECT txid_current_snapshot()::text").Scan(&readAt); err != nil {
			return err
		}
		for _, r := range todo {
			var err error
			if r.pair.NoKey {
				recs, err = keylessFixRecords(ctx, tx, r.pair, r.Diffs, recs)
			} else {
				recs, err = keyedFixRecords(ctx, tx, r.pair, diffKeys(r.Diffs), recs)
			}
			if err != nil {
				return fmt.Errorf("read source rows of %s: %w", r.Table, err)
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

// keyedFixRecords appends, for each key, the source's row as an upsert, or a delete.
func keyedFixRecords(ctx context.Context, tx pgx.Tx, p *pair, keys [][]string, recs []deltarec.Record) ([]deltarec.Record, error) {
	rows, err := fetchRows(ctx, tx, p, keys)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if f, ok := rows[joinKey(k)]; ok {
			row := map[string]*string{}
			for i, c := range p.Cols {
				row[c.Name] = f.raw[i]
			}
			recs = append(recs, deltarec.Record{Op: deltarec.OpUpsert, Table: p.Name, Row: row})
			continue
		}
		key := map[string]*string{}
		for i, c := range p.Key {
			key[c.Name] = &k[i]
		}
		recs = append(recs, deltarec.Record{Op: deltarec.OpDelete, Table: p.Name, Key: key})
	}
	return recs, nil
}

// keylessFixRecords appends, for each differing row of a table without a key, a rows record with
// the number of copies the source holds.
func keylessFixRecords(ctx context.Context, tx pgx.Tx, p *pair, ds []Diff, recs []deltarec.Record) ([]deltarec.Record, error) {
	rts := make([]string, len(ds))
	for i, d := range ds {
		rts[i] = d.rt
	}
	counts, err := countRows(ctx, tx, p, rts)
	if err != nil {
		return nil, err
	}
	for i, d := range ds {
		row := map[string]*string{}
		for j, c := range p.Cols {
			row[c.Name] = d.raw[j]
		}
		recs = append(recs, deltarec.Record{Op: deltarec.OpRows, Table: p.Name, Row: row, Count: &counts[i]})
	}
	return recs, nil
}
