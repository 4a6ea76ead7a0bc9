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
	b.rows += a.n
}

var two64 = new(big.Int).Lsh(big.NewInt(1), 64)

// scanChunk hashes one chunk of a table on one side and adds its buckets to out.
func scanChunk(ctx context.Context, s *side, p *pair, fn string, mask int64, c chunk, out *buckets) error {
	q := fmt.Sprintf("SELECT b, count(*), sum(h)::text FROM (SELECT %s AS b, %s AS h FROM %s WHERE %s) s GROUP BY b",
		bucketExpr(p, fn, mask), hashExpr(p, fn), p.from(), c.where)
	return s.inSnapshot(ctx, func(tx pgx.Tx) error {
		local := map[int64]agg{}
		// At most 4096 groups: a hash aggregate stays in memory on any version. The planner cannot
		// tell that "& mask" bounds the groups and would sort every row of the chunk instead.
		if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '32MB'; SET LOCAL enable_sort = off"); err != nil {
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

// scanAll hashes every comparable table on both sides at once, jobs workers per side.
func scanAll(ctx context.Context, src, dst *side, pairs []*pair, fn string, chunkRows int64, jobs int) (map[*pair][2]*buckets, map[*pair]int64, error) {
	type job struct {
		p *pair
		c chunk
	}
	var list []job
	masks := map[*pair]int64{}
	res := map[*pair][2]*buckets{}
	for _, p := range pairs {
		if p.Reason != "" && !p.NoKey {
			continue
		}
		cs := []chunk{{where: "true"}}
		masks[p] = 0 // a keyless table is one bucket: its rows compared as a multiset
		if !p.NoKey {
			var err error
			if cs, err = splitTable(ctx, src, p, chunkRows); err != nil {
				return nil, nil, err
			}
			masks[p] = bucketCount(p.EstRows) - 1
		}
		res[p] = [2]*buckets{{}, {}}
		for _, c := range cs {
			list = append(list, job{p, c})
		}
	}
	// Biggest tables first, so a big table does not start last.
	sort.SliceStable(list, func(i, j int) bool { return list[i].p.EstRows > list[j].p.EstRows })
	g, gctx := newGroup(ctx)
	for si, s := range []*side{src, dst} {
		ch := make(chan job)
		g.Go(func() error {
			defer close(ch)
			for _, j := range list {
				select {
				case ch <- j:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
		for range jobs {
			g.Go(func() error {
				for j := range ch {
					scan := scanChunk
					if fn == hashClient {
						scan = func(ctx context.Context, s *side, p *pair, _ string, mask int64, c chunk, out *buckets) error {
							return scanChunkCopy(ctx, s, p, mask, c, out)
						}
					}
					if err := scan(gctx, s, j.p, fn, masks[j.p], j.c, res[j.p][si]); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return res, masks, nil
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
