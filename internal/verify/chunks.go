package verify

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

// chunk is a key range of a table read by one worker; both sides use the same ranges, and
// since bucket sums are added over all chunks of a side, a range need not hold the same rows
// on both sides: each side's ranges only have to cover each of its rows exactly once.
type chunk struct {
	where string // SQL condition, "true" for the whole table
	args  []any
}

// splitTable cuts a big table into about estRows/chunkRows key ranges of its first key column:
// by histogram bounds when the column's type has no collation (so both sides order it the same
// way), else by arithmetic over min and max for integer keys; one chunk otherwise.
func splitTable(ctx context.Context, src *side, p *pair, chunkRows int64) ([]chunk, error) {
	n := p.EstRows / chunkRows
	if n < 2 {
		return []chunk{{where: "true"}}, nil
	}
	n = min(n, 256)
	k := p.Key[0]
	col := ident.Quote(k.Name)
	var bounds []string
	var stats []string
	err := src.exporter.QueryRow(ctx, `SELECT coalesce((SELECT s.histogram_bounds::text::text[] FROM pg_stats s
		JOIN pg_attribute a ON a.attrelid = $1::oid AND a.attname = s.attname JOIN pg_type t ON t.oid = a.atttypid
		WHERE s.schemaname = $2 AND s.tablename = $3 AND s.attname = $4 AND t.typcollation = 0 AND s.inherited = $5
		LIMIT 1), '{}')`, p.Src.OID, p.Src.Schema, p.Src.Name, k.Name, p.Src.Kind == "p").Scan(&stats)
	if err != nil {
		return nil, fmt.Errorf("read key statistics of %s: %w", p.Name, err)
	}
	switch {
	case len(stats) >= 3:
		step := max(1, len(stats)/int(n))
		for i := step; i < len(stats)-1; i += step {
			bounds = append(bounds, stats[i])
		}
	case p.KeyIsInts:
		var lo, hi *int64
		q := fmt.Sprintf("SELECT min(%s)::bigint, max(%s)::bigint FROM %s", col, col, p.from())
		if err := src.exporter.QueryRow(ctx, q).Scan(&lo, &hi); err != nil {
			return nil, fmt.Errorf("read key range of %s: %w", p.Name, err)
		}
		if lo == nil || *hi-*lo < n {
			break
		}
		step := (*hi - *lo) / n
		for i := int64(1); i < n; i++ {
			bounds = append(bounds, strconv.FormatInt(*lo+i*step, 10))
		}
	}
	if len(bounds) == 0 {
		return []chunk{{where: "true"}}, nil
	}
	typ := k.Type
	var out []chunk
	out = append(out, chunk{where: fmt.Sprintf("%s < $1::text::%s", col, typ), args: []any{bounds[0]}})
	for i := 1; i < len(bounds); i++ {
		out = append(out, chunk{where: fmt.Sprintf("%s >= $1::text::%s AND %s < $2::text::%s", col, typ, col, typ), args: []any{bounds[i-1], bounds[i]}})
	}
	out = append(out, chunk{where: fmt.Sprintf("%s >= $1::text::%s", col, typ), args: []any{bounds[len(bounds)-1]}})
	return out, nil
}

// queryer is what a chunk scan needs from a transaction.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// chunkPlan is how each side of a table is read, and the first pass's totals per chunk.
type chunkPlan struct {
	chunks [2][]chunk
	shared bool // both sides read the same key ranges: totals compare chunk by chunk
	totals [2][]agg
}

// differs reports whether chunk ci must be read again grouped into buckets: its totals differ
// (shared key ranges), or the whole table's do.
func (pl *chunkPlan) differs(ci int) bool {
	if pl.shared {
		return pl.totals[0][ci] != pl.totals[1][ci]
	}
	return sumAggs(pl.totals[0]) != sumAggs(pl.totals[1])
}

func sumAggs(list []agg) agg {
	var a agg
	for _, t := range list {
		a.n, a.sum = a.n+t.n, a.sum+t.sum
	}
	return a
}

// planChunks splits a big table among workers: by block ranges of each side's own heap where
// both servers can scan them (PostgreSQL 14+, a plain table), which reads like a sequential scan
// whatever order the keys are stored in; else by key ranges shared by both sides.
func planChunks(ctx context.Context, src, dst *side, p *pair, chunkRows int64) (*chunkPlan, error) {
	pl := &chunkPlan{}
	n := p.EstRows / chunkRows
	if n >= 2 && src.version.TIDRangeScan() && dst.version.TIDRangeScan() && p.Src.Kind == "r" && p.Dst.Kind == "r" {
		pl.chunks[0] = ctidChunks(p.Src.Bytes, n)
		pl.chunks[1] = ctidChunks(p.Dst.Bytes, n)
	} else {
		cs := []chunk{{where: "true"}}
		if !p.NoKey {
			var err error
			if cs, err = splitTable(ctx, src, p, chunkRows); err != nil {
				return nil, err
			}
		}
		pl.chunks = [2][]chunk{cs, cs}
		pl.shared = true
	}
	pl.totals = [2][]agg{make([]agg, len(pl.chunks[0])), make([]agg, len(pl.chunks[1]))}
	return pl, nil
}

// ctidChunks cuts a heap of the given size into n block ranges (at most 256); the last is open
// ended, so rows on pages added since the size was read are covered too.
func ctidChunks(bytes, n int64) []chunk {
	pages := bytes / 8192
	n = min(n, 256, max(pages, 1))
	if n < 2 {
		return []chunk{{where: "true"}}
	}
	step := pages / n
	var out []chunk
	for i := int64(0); i < n; i++ {
		lo, hi := i*step, (i+1)*step
		switch {
		case i == 0:
			out = append(out, chunk{where: fmt.Sprintf("ctid < '(%d,0)'::tid", hi)})
		case i == n-1:
			out = append(out, chunk{where: fmt.Sprintf("ctid >= '(%d,0)'::tid", lo)})
		default:
			out = append(out, chunk{where: fmt.Sprintf("ctid >= '(%d,0)'::tid AND ctid < '(%d,0)'::tid", lo, hi)})
		}
	}
	return out
}
