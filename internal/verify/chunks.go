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
