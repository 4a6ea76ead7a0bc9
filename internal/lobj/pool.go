package lobj

import (
	"context"
	"io"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Config is what comparing and syncing large objects need.
type Config struct {
	Source, Target func(ctx context.Context) (*pgx.Conn, error) // open one connection to each side
	Workers        int                                          // connections per side (at least 1)
	Progress       Progress                                     // optional
	Warnings       io.Writer                                    // optional: where a warning line goes as it happens
}

// Progress is told about the data moved (internal/progress's Reporter has these methods).
type Progress interface {
	AddTable(name string, estRows, estBytes int64)
	Begin(name string)
	Add(name string, rows, bytes int64)
	End(name string)
	TableDone(name string)
}

// Table is the name large objects are reported under, as pg_dump and pgverify do.
const Table = "pg_largeobject"

// conns is one worker's connection to each side.
type conns struct{ src, dst *pgx.Conn }

func (c *conns) close(ctx context.Context) {
	if c.src != nil {
		c.src.Close(ctx)
	}
	if c.dst != nil {
		c.dst.Close(ctx)
	}
}

// open connects a worker to both sides.
func (cfg Config) open(ctx context.Context) (*conns, error) {
	src, err := cfg.Source(ctx)
	if err != nil {
		return nil, err
	}
	dst, err := cfg.Target(ctx)
	if err != nil {
		src.Close(ctx)
		return nil, err
	}
	return &conns{src: src, dst: dst}, nil
}

// parallel runs job(i) for i in [0, n) on up to cfg.Workers workers, each with its own
// connections; the first error stops the others and is returned.
func (cfg Config) parallel(ctx context.Context, n int, job func(ctx context.Context, c *conns, i int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	go func() {
		defer close(next)
		for i := 0; i < n; i++ {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	fail := func(err error) { once.Do(func() { first = err; cancel() }) }
	for w := 0; w < min(max(cfg.Workers, 1), n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := cfg.open(ctx)
			if err != nil {
				fail(err)
				return
			}
			defer c.close(context.Background())
			for i := range next {
				if err := job(ctx, c, i); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
