package verify

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5"
)

// group runs goroutines and keeps the first error, cancelling the others' context.
type group struct {
	wg     sync.WaitGroup
	once   sync.Once
	err    error
	cancel context.CancelFunc
}

func newGroup(ctx context.Context) (*group, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	return &group{cancel: cancel}, ctx
}

func (g *group) Go(fn func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := fn(); err != nil {
			g.once.Do(func() { g.err = err; g.cancel() })
		}
	}()
}

func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}

// bothSides runs fn for the source (i = 0) and the target (i = 1) at the same time.
func bothSides(ctx context.Context, src, dst *side, fn func(ctx context.Context, i int, s *side) error) error {
	g, gctx := newGroup(ctx)
	for i, s := range []*side{src, dst} {
		g.Go(func() error { return fn(gctx, i, s) })
	}
	return g.Wait()
}

// txRunner runs fn in a transaction of one side: side.inSnapshot or side.fresh.
type txRunner func(context.Context, func(pgx.Tx) error) error

// inBoth runs fn in a transaction of each side (i = 0 source, 1 target), both at the same time.
func inBoth(ctx context.Context, runSrc, runDst txRunner, fn func(ctx context.Context, i int, tx pgx.Tx) error) error {
	g, gctx := newGroup(ctx)
	for i, run := range []txRunner{runSrc, runDst} {
		g.Go(func() error {
			return run(gctx, func(tx pgx.Tx) error { return fn(gctx, i, tx) })
		})
	}
	return g.Wait()
}
