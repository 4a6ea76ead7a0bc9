package copyout

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/ident"
)

// Chunk kinds.
const (
	KindAll  = "all"  // the whole table
	KindKey  = "key"  // first key column in [Lower, Upper)
	KindCtid = "ctid" // ctid in [Lower, Upper), bounds as '(block,0)'
)

// Chunk is one unit of work: a part of a table read in one transaction.
type Chunk struct {
	ID       int
	Kind     string
	Lower    *string // inclusive, nil = unbounded
	Upper    *string // exclusive, nil = unbounded
	Skip     bool    // already on the target
	EstBytes int64   // for ordering: biggest first
}

// TablePlan is a table to copy and its chunks.
type TablePlan struct {
	*catalog.Table
	Chunks  []Chunk
	Restart bool // partly loaded under another snapshot: the target must be emptied first
}

// Planner splits tables into chunks.
type Planner struct {
	SplitSize int64 // tables bigger than this are split
	Jobs      int   // a split table gets at least this many chunks
	// SampleRows is the target sample size for quantiles when no histogram exists.
	SampleRows int64
	// NoTIDRangeScan is set for servers before PostgreSQL 14, which scan the whole table for a
	// ctid range: a table without a usable key is then read as one chunk.
	NoTIDRangeScan bool
	// SplitBy is how a keyed table is split: "key" (key ranges), "ctid" (block ranges, read
	// sequentially; only safe when every chunk of the table reads one shared snapshot), or ""
	// (auto: ctid when CtidOK and the first key column is not stored in about its order, where
	// key ranges would read the heap at random; key ranges otherwise).
	SplitBy string
	CtidOK  bool // all chunks of a table read one snapshot (--snapshot shared)
}

// chunkCount is how many chunks a table of bytes should get.
func (p Planner) chunkCount(bytes int64) int {
	if p.SplitSize <= 0 || bytes <= p.SplitSize {
		return 1
	}
	n := (bytes + p.SplitSize - 1) / p.SplitSize
	if n < int64(p.Jobs) {
		n = int64(p.Jobs)
	}
	if n > 100000 {
		n = 100000
	}
	return int(n)
}

// Plan splits t into chunks of about even row counts: by key ranges of its first key column
// (histogram bounds, else sampled quantiles), else by ctid ranges.
func (p Planner) Plan(ctx context.Context, conn *pgx.Conn, t *catalog.Table) (*TablePlan, error) {
	tp := &TablePlan{Table: t}
	n := p.chunkCount(t.Bytes)
	if n <= 1 {
		tp.Chunks = []Chunk{{ID: 0, Kind: KindAll, EstBytes: t.Bytes}}
		return tp, nil
	}
	byKey := len(t.KeyColumns) > 0
	if byKey && !p.NoTIDRangeScan && p.CtidOK {
		switch p.SplitBy {
		case "ctid":
			byKey = false
		case "":
			corr, err := keyCorrelation(ctx, conn, t)
			if err != nil {
				return nil, fmt.Errorf("plan %s: %w", t.Key(), err)
			}
			byKey = corr >= 0.9
		}
	}
	if byKey {
		cuts, wanted, err := p.keyCuts(ctx, conn, t, n)
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", t.Key(), err)
		}
		// A first key column with too few distinct values (a tenant id leading a composite key)
		// cannot split evenly: ctid ranges do better, where the server scans them by range.
		if len(cuts) > 0 && (len(cuts)*4 >= wanted*3 || p.NoTIDRangeScan) {
			tp.Chunks = rangeChunks(KindKey, cuts, t.Bytes)
			return tp, nil
		}
	}
	if p.NoTIDRangeScan {
		tp.Chunks = []Chunk{{ID: 0, Kind: KindAll, EstBytes: t.Bytes}}
		return tp, nil
	}
	blocks, err := relBlocks(ctx, conn, t)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", t.Key(), err)
	}
	if int64(n) > blocks {
		n = int(blocks)
	}
	var cuts []string
	for i := 1; i < n; i++ {
		cuts = append(cuts, fmt.Sprintf("(%d,0)", int64(i)*blocks/int64(n)))
	}
	if len(cuts) == 0 {
		tp.Chunks = []Chunk{{ID: 0, Kind: KindAll, EstBytes: t.Bytes}}
		return tp, nil
	}
	tp.Chunks = rangeChunks(KindCtid, cuts, t.Bytes)
	return tp, nil
}

// rangeChunks turns n-1 ordered cut points into n chunks, unbounded at both ends.
func rangeChunks(kind string, cuts []string, bytes int64) []Chunk {
	out := make([]Chunk, 0, len(cuts)+1)
	per := bytes / int64(len(cuts)+1)
	var lo *string
	for i := 0; i <= len(cuts); i++ {
		var hi *string
		if i < len(cuts) {
			c := cuts[i]
			hi = &c
		}
		out = append(out, Chunk{ID: i, Kind: kind, Lower: lo, Upper: hi, EstBytes: per})
		lo = hi
	}
	return out
}

// keyColumn returns the first key column and its type.
func keyColumn(t *catalog.Table) (name, typ string) {
	name = t.KeyColumns[0]
	for _, c := range t.Columns {
		if c.Name == name {
			return name, c.Type
		}
	}
	return name, ""
}

// keyCuts finds n-1 cut points of the first key column that split the rows evenly, from
// pg_stats histogram bounds when present, else from a sample. It also returns how many distinct
// cuts an even split needs: fewer means a few values hold most rows.
func (p Planner) keyCuts(ctx context.Context, conn *pgx.Conn, t *catalog.Table, n int) ([]string, int, error) {
	col, _ := keyColumn(t)
	var bounds []string
	var mcf []float64
	err := conn.QueryRow(ctx, `SELECT histogram_bounds::text::text[], most_common_freqs::float8[] FROM pg_stats
		WHERE schemaname = $1 AND tablename = $2 AND attname = $3 AND NOT inherited`, t.Schema, t.Name, col).Scan(&bounds, &mcf)
	if err != nil && err != pgx.ErrNoRows {
		return nil, 0, fmt.Errorf("read histogram of %s: %w", col, err)
	}
	// A histogram describes the rows outside the most common values: it splits evenly only when
	// those are few. For a non-unique first column the cuts still cover every row exactly once.
	common := 0.0
	for _, f := range mcf {
		common += f
	}
	if len(bounds) >= 3 && common < 0.1 {
		wanted := n - 1
		if inner := len(bounds) - 2; inner < wanted {
			wanted = inner
		}
		return pickCuts(bounds, n, true), wanted, nil
	}
	bounds, err = p.sampleQuantiles(ctx, conn, t, col, n)
	if err != nil {
		return nil, 0, err
	}
	return pickCuts(bounds, n, false), n - 1, nil
}

// pickCuts chooses n-1 inner cut points from ordered bounds. Histogram bounds include the
// minimum and maximum (which are not cuts); quantiles hold exactly the wanted inner points.
func pickCuts(bounds []string, n int, histogram bool) []string {
	var cuts []string
	if histogram {
		last := len(bounds) - 1 // bounds[0] is the minimum, bounds[last] the maximum
		for i := 1; i < n; i++ {
			cuts = append(cuts, bounds[(i*last+n/2)/n])
		}
	} else {
		cuts = bounds
	}
	// Equal neighbours would make empty chunks; the order is the server's and is kept.
	out := cuts[:0:0]
	for _, c := range cuts {
		if len(out) > 0 && out[len(out)-1] == c {
			continue
		}
		out = append(out, c)
	}
	return out
}

// sampleQuantiles reads the n-1 inner quantiles of col from a block sample of the table,
// ordered by the column's own ordering and collation.
func (p Planner) sampleQuantiles(ctx context.Context, conn *pgx.Conn, t *catalog.Table, col string, n int) ([]string, error) {
	want := p.SampleRows
	if want <= 0 {
		want = 30000
	}
	est := t.EstRows
	if est <= 0 { // never analyzed: guess from the size
		est = t.Bytes / 100
	}
	pct := 100.0
	if est > 0 && want*100/est < 100 {
		pct = float64(want) * 100 / float64(est)
		if pct < 0.0001 {
			pct = 0.0001
		}
	}
	fr := make([]string, 0, n-1)
	for i := 1; i < n; i++ {
		fr = append(fr, fmt.Sprintf("%g", float64(i)/float64(n)))
	}
	sample := ""
	if pct < 100 {
		sample = fmt.Sprintf(" TABLESAMPLE SYSTEM (%g)", pct)
	}
	q := fmt.Sprintf(`SELECT (percentile_disc(ARRAY[%s]::float8[]) WITHIN GROUP (ORDER BY %s))::text::text[] FROM ONLY %s%s`,
		strings.Join(fr, ","), ident.Quote(col), t.String(), sample)
	var out []string
	if err := conn.QueryRow(ctx, q).Scan(&out); err != nil {
		return nil, fmt.Errorf("sample quantiles of %s: %w", col, err)
	}
	if len(out) == 0 && pct < 100 { // the sample hit no rows (tiny or sparse table): read all of it
		q = fmt.Sprintf(`SELECT (percentile_disc(ARRAY[%s]::float8[]) WITHIN GROUP (ORDER BY %s))::text::text[] FROM ONLY %s`,
			strings.Join(fr, ","), ident.Quote(col), t.String())
		if err := conn.QueryRow(ctx, q).Scan(&out); err != nil {
			return nil, fmt.Errorf("quantiles of %s: %w", col, err)
		}
	}
	return out, nil
}

// keyCorrelation is pg_stats' correlation of the first key column with the physical row order,
// as an absolute value (0 when unknown: the table was never analyzed).
func keyCorrelation(ctx context.Context, conn *pgx.Conn, t *catalog.Table) (float64, error) {
	col, _ := keyColumn(t)
	var c *float64
	err := conn.QueryRow(ctx, `SELECT abs(correlation)::float8 FROM pg_stats
		WHERE schemaname = $1 AND tablename = $2 AND attname = $3 AND NOT inherited`, t.Schema, t.Name, col).Scan(&c)
	if err != nil && err != pgx.ErrNoRows {
		return 0, fmt.Errorf("read correlation of %s: %w", col, err)
	}
	if c == nil {
		return 0, nil
	}
	return *c, nil
}

// relBlocks is the number of blocks in the table's main fork.
func relBlocks(ctx context.Context, conn *pgx.Conn, t *catalog.Table) (int64, error) {
	var b int64
	err := conn.QueryRow(ctx, `SELECT pg_relation_size($1::regclass) / current_setting('block_size')::bigint`, t.String()).Scan(&b)
	if err != nil {
		return 0, fmt.Errorf("read size: %w", err)
	}
	return b, nil
}

// Where is the predicate selecting the chunk's rows ("" for the whole table).
func (c Chunk) Where(t *catalog.Table) string {
	var col, typ string
	switch c.Kind {
	case KindKey:
		name, ty := keyColumn(t)
		col, typ = ident.Quote(name), ty
	case KindCtid:
		col, typ = "ctid", "tid"
	default:
		return ""
	}
	var parts []string
	if c.Lower != nil {
		parts = append(parts, fmt.Sprintf("%s >= CAST(%s AS %s)", col, ident.Literal(*c.Lower), typ))
	}
	if c.Upper != nil {
		parts = append(parts, fmt.Sprintf("%s < CAST(%s AS %s)", col, ident.Literal(*c.Upper), typ))
	}
	return strings.Join(parts, " AND ")
}

// CopySQL is the COPY statement that reads the chunk in COPY text format. A whole table is read
// with a plain COPY of the table, which copies only its own rows (never those of inheritance
// children) and skips the executor.
func (c Chunk) CopySQL(t *catalog.Table) string {
	cols := ident.QuoteList(t.ColumnNames())
	where := c.Where(t)
	if where == "" && len(t.Columns) > 0 {
		return fmt.Sprintf("COPY %s (%s) TO STDOUT", t.String(), cols)
	}
	if len(t.Columns) == 0 {
		cols = ""
	}
	q := fmt.Sprintf("COPY (SELECT %s FROM ONLY %s", cols, t.String())
	if where != "" {
		q += " WHERE " + where
	}
	return q + ") TO STDOUT"
}
