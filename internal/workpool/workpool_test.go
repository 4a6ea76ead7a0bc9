package workpool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunEveryItemOnNWorkers(t *testing.T) {
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	var mu sync.Mutex
	seen := map[int]int{}
	var running, peak atomic.Int32
	err := Run(context.Background(), 4, items, func(ctx context.Context, ch <-chan int) error {
		for it := range ch {
			if n := running.Add(1); n > peak.Load() {
				peak.Store(n)
			}
			time.Sleep(time.Millisecond)
			mu.Lock()
			seen[it]++
			mu.Unlock()
			running.Add(-1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if seen[it] != 1 {
			t.Fatalf("item %d done %d times", it, seen[it])
		}
	}
	if p := peak.Load(); p > 4 || p < 2 {
		t.Fatalf("peak concurrency %d, want 2..4", p)
	}
}

func TestFirstErrorCancelsTheRest(t *testing.T) {
	boom := errors.New("boom")
	var done atomic.Int32
	g, ctx := New(context.Background())
	Each(g, ctx, 3, make([]int, 1000), func(ctx context.Context, _ int) error {
		if done.Add(1) == 5 {
			return boom
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
			return nil
		}
	})
	if err := g.Wait(); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the first error", err)
	}
	if n := done.Load(); n > 20 {
		t.Fatalf("%d items ran after the failure; the others were not cancelled", n)
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Run(ctx, 2, []int{1, 2, 3}, func(ctx context.Context, ch <-chan int) error {
		for range ch {
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if err := Run(context.Background(), 2, []int{}, func(context.Context, <-chan int) error { return errors.New("no items: no workers") }); err != nil {
		t.Fatalf("no items: %v", err)
	}
}

func TestForEach(t *testing.T) {
	var sum atomic.Int64
	if err := ForEach(context.Background(), 3, []int64{1, 2, 3, 4}, func(_ context.Context, v int64) error { sum.Add(v); return nil }); err != nil || sum.Load() != 10 {
		t.Fatalf("sum %d, err %v; want 10, nil", sum.Load(), err)
	}
	boom := errors.New("boom")
	if err := ForEach(context.Background(), 2, []int{1, 2, 3}, func(context.Context, int) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
}
