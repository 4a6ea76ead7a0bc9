// Package workpool runs work on a fixed number of goroutines; the first error cancels the rest.
// It is the one worker pool of pgcopyout (chunks), pgcopyin -i DIR (chunk files) and pgverify
// (tables and chunks on both sides).
package workpool

import (
	"context"
	"sync"
)

// Group runs goroutines and keeps the first error, cancelling the others' context.
type Group struct {
	wg     sync.WaitGroup
	once   sync.Once
	err    error
	cancel context.CancelFunc
}

// New returns a group and the context its goroutines must use: cancelled by the first error,
// by Wait, or with ctx.
func New(ctx context.Context) (*Group, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	return &Group{cancel: cancel}, ctx
}

// Go runs fn in a goroutine of the group; if it fails first, its error is the group's.
func (g *Group) Go(fn func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := fn(); err != nil {
			g.once.Do(func() { g.err = err; g.cancel() })
		}
	}()
}

// Wait waits for every goroutine of the group and returns the first error.
func (g *Group) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}

// Workers starts n workers on g (never more than there are items), each reading items from one
// channel that is fed in order and closed at the end; feeding stops once ctx (the group's) is done.
// A worker returns when the channel is closed, or with an error.
func Workers[T any](g *Group, ctx context.Context, n int, items []T, worker func(ctx context.Context, items <-chan T) error) {
	n = min(max(n, 1), len(items))
	ch := make(chan T)
	g.Go(func() error {
		defer close(ch)
		for _, it := range items {
			select {
			case ch <- it:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for range n {
		g.Go(func() error { return worker(ctx, ch) })
	}
}

// Each starts n workers on g that call fn for each item, in order.
func Each[T any](g *Group, ctx context.Context, n int, items []T, fn func(ctx context.Context, item T) error) {
	Workers(g, ctx, n, items, func(ctx context.Context, ch <-chan T) error {
		for it := range ch {
			if err := fn(ctx, it); err != nil {
				return err
			}
		}
		return nil
	})
}

// Run runs worker on n goroutines over items (see Workers) and returns the first error, or ctx's
// error if ctx was cancelled.
func Run[T any](ctx context.Context, n int, items []T, worker func(ctx context.Context, items <-chan T) error) error {
	g, gctx := New(ctx)
	Workers(g, gctx, n, items, worker)
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// ForEach calls fn for each item on n goroutines (see Each) and returns the first error, or ctx's
// error if ctx was cancelled.
func ForEach[T any](ctx context.Context, n int, items []T, fn func(ctx context.Context, item T) error) error {
	g, gctx := New(ctx)
	Each(g, gctx, n, items, fn)
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
