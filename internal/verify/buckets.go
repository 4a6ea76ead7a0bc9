package verify

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"sync"

	"github.com/jackc/pgx/v5"
)

// agg is one bucket's row count and wrapping 64-bit sum of row hashes.
type agg struct {
	n   int64
	sum uint64
}

// buckets holds one side's aggregates of one table.
type buckets struct {
	mu   sync.Mutex
	m    map[int64]agg
	rows int64
}

func (b *buckets) add(k int64, a agg) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[int64]agg{}
	}
	x := b.m[k]
	x.n += a.n
	x.sum += a.sum
	b.m[k] = x
}

var two64 = new(big.Int).Lsh(big.NewInt(1), 64)

// scanChunk hashes one chunk of a table on one side and adds its buckets to out.
func scanChunk(ctx context.Context, s *side, p *pair, fn string, mask int64, c chunk, out *buckets) error {
	q := fmt.Sprintf("SELECT b, count(*), sum(h)::text FROM (SELECT %s AS b, %s AS h FROM %s WHERE %s) s GROUP BY b",
		bucketExpr(p, fn, mask), hashExpr(p, fn), p.from(), c.where)
	if p.NoKey {
		// Buckets by the row hash itself, computed once per row (OFFSET 0 keeps the subquery from
		// being flattened, which would compute it for the grouping and again for the sum).
		q = fmt.Sprintf("SELECT h & %d, count(*), sum(h)::text FROM (SELECT %s AS h FROM %s WHERE %s OFFSET 0) s GROUP BY 1",
			mask, hashExpr(p, fn), p.from(), c.where)
	}
	return s.inSnapshot(ctx, func(tx pgx.Tx) error {
		local := map[int64]agg{}
		// At most 4096 groups: a hash aggregate stays in memory on any version. The planner cannot
		// tell that "& mask" bounds the groups and would sort every row of the chunk instead.
		if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '32MB'; SET LOCAL enable_sort = off; "+noParallel); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, q, c.args...)
		if err != nil {
			return fmt.Errorf("hash %s on %s: %w", p.Name, s.role, err)
		}
		var (
			b, n int64
			sum  string
		)
		_, err = pgx.ForEachRow(rows, []any{&b, &n, &sum}, func() error {
			v, ok := new(big.Int).SetString(sum, 10)
			if !ok {
				return fmt.Errorf("bad hash sum %q", sum)
			}
			local[b] = agg{n: n, sum: v.Mod(v, two64).Uint64()}
			return nil
		})
		if err != nil {
			return fmt.Errorf("hash %s on %s: %w", p.Name, s.role, err)
		}
		// Only a completed chunk counts: a retried chunk never adds twice.
		for k, a := range local {
			out.add(k, a)
		}
		return nil
	})
}

// scanJob is one chunk of one table; ci is its index in the table's chunk list.
type scanJob struct {
	p  *pair
	c  chunk
	ci int
}

// scanAll hashes every comparable table on both sides at once, jobs workers per side. Hashed
// by the servers, a first pass sums the row hashes of each chunk without grouping them (about
// the cost of a COPY), and only what differs is read again grouped into buckets: the chunks that
// differ when both sides read the same key ranges, else the whole table. Identical tables thus
// cost one plain scan per side. The client hash reads buckets in one pass.
func scanAll(ctx context.Context, src, dst *side, pairs []*pair, fn string, chunkRows int64, jobs int, prog *scanProgress) (map[*pair][2]*buckets, map[*pair]int64, error) {
	var lists [2][]scanJob
	masks := map[*pair]int64{}
	res := map[*pair][2]*buckets{}
	plans := map[*pair]*chunkPlan{}
	for _, p := range pairs {
		if p.Reason != "" {
			continue
		}
		pl, err := planChunks(ctx, src, dst, p, chunkRows)
		if err != nil {
			return nil, nil, err
		}
		plans[p] = pl
		masks[p] = bucketCount(p.EstRows) - 1 // keyless tables: buckets of row hashes
		res[p] = [2]*buckets{{}, {}}
		prog.plan(p, len(pl.chunks[0])+len(pl.chunks[1]))
		for si := range 2 {
			for i, c := range pl.chunks[si] {
				lists[si] = append(lists[si], scanJob{p, c, i})
			}
		}
	}
	// Biggest tables first, so a big table does not start last.
	for si := range 2 {
		sort.SliceStable(lists[si], func(i, j int) bool { return lists[si][i].p.EstRows > lists[si][j].p.EstRows })
	}
	if fn == hashClient {
		err := perSide(ctx, src, dst, lists, jobs, func(ctx context.Context, s *side, si int, j scanJob) error {
			prog.begin(j.p)
			n, err := scanChunkCopy(ctx, s, j.p, masks[j.p], j.c, res[j.p][si])
			if err == nil {
				prog.end(j.p, si, len(plans[j.p].chunks[si]), n)
			}
			return err
		})
		return res, masks, err
	}
	// Pass 1: one total per chunk and side (each slot written by one worker only).
	err := perSide(ctx, src, dst, lists, jobs, func(ctx context.Context, s *side, si int, j scanJob) error {
		prog.begin(j.p)
		a, err := scanChunkTotal(ctx, s, j.p, fn, j.c)
		plans[j.p].totals[si][j.ci] = a
		if err == nil {
			prog.end(j.p, si, len(plans[j.p].chunks[si]), a.n)
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	var again [2][]scanJob
	for si := range 2 {
		for _, j := range lists[si] {
			pl := plans[j.p]
			res[j.p][si].rows += pl.totals[si][j.ci].n
			if pl.differs(j.ci) {
				again[si] = append(again[si], j)
			}
		}
	}
	// Pass 2: what differs, grouped into buckets on both sides.
	err = perSide(ctx, src, dst, again, jobs, func(ctx context.Context, s *side, si int, j scanJob) error {
		return scanChunk(ctx, s, j.p, fn, masks[j.p], j.c, res[j.p][si])
	})
	return res, masks, err
}

// noParallel keeps a chunk's scan in its own backend: pgverify already runs -j chunks per side,
// and a parallel index scan of a key range cost a third more in all (bench-copy's data, 2 cores).
const noParallel = "SET LOCAL max_parallel_workers_per_gather = 0"

// scanChunkTotal returns the row count and hash sum of one chunk on one side.
func scanChunkTotal(ctx context.Context, s *side, p *pair, fn string, c chunk) (agg, error) {
	q := fmt.Sprintf("SELECT count(*), coalesce(sum(%s), 0)::text FROM %s WHERE %s", hashExpr(p, fn), p.from(), c.where)
	var out agg
	err := s.inSnapshot(ctx, func(tx pgx.Tx) error {
		var n int64
		var sum string
		if _, err := tx.Exec(ctx, noParallel); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, q, c.args...).Scan(&n, &sum); err != nil {
			return fmt.Errorf("hash %s on %s: %w", p.Name, s.role, err)
		}
		v, ok := new(big.Int).SetString(sum, 10)
		if !ok {
			return fmt.Errorf("bad hash sum %q", sum)
		}
		out = agg{n: n, sum: v.Mod(v, two64).Uint64()}
		return nil
	})
	return out, err
}

// mismatched lists the buckets whose count or hash sum differ, in order.
func mismatched(a, b *buckets) []int64 {
	var out []int64
	for k, x := range a.m {
		if b.m[k] != x {
			out = append(out, k)
		}
	}
	for k := range b.m {
		if _, ok := a.m[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// addRows counts rows read into b.
func (b *buckets) addRows(n int64) {
	b.mu.Lock()
	b.rows += n
	b.mu.Unlock()
}
