package verify

import (
	"context"
	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/workpool"
)

// perSide runs fn for each side's items on that side, both sides at once, jobs workers per side;
// the first error stops both.
func perSide[T any](ctx context.Context, src, dst *side, lists [2][]T, jobs int, fn func(ctx context.Context, s *side, si int, item T) error) error {
	g, gctx := workpool.New(ctx)
	for si, s := range []*side{src, dst} {
		workpool.Each(g, gctx, jobs, lists[si], func(ctx context.Context, item T) error { return fn(ctx, s, si, item) })
	}
	return g.Wait()
}

// bothSides runs fn for the source (i = 0) and the target (i = 1) at the same time.
func bothSides(ctx context.Context, src, dst *side, fn func(ctx context.Context, i int, s *side) error) error {
	g, gctx := workpool.New(ctx)
	for i, s := range []*side{src, dst} {
		g.Go(func() error { return fn(gctx, i, s) })
	}
	return g.Wait()
}

// txRunner runs fn in a transaction of one side: side.inSnapshot or side.fresh.
type txRunner func(context.Context, func(pgx.Tx) error) error

// inBoth reads a value with read in a transaction of each side (0 source, 1 target), both at the
// same time.
func inBoth[T any](ctx context.Context, runSrc, runDst txRunner, read func(ctx context.Context, tx pgx.Tx) (T, error)) ([2]T, error) {
	var got [2]T
	g, gctx := workpool.New(ctx)
	for i, run := range []txRunner{runSrc, runDst} {
		g.Go(func() error {
			return run(gctx, func(tx pgx.Tx) (err error) {
				got[i], err = read(gctx, tx)
				return err
			})
		})
	}
	return got, g.Wait()
}
