package delta

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/retry"
)

// FollowOptions control a run of batches.
type FollowOptions struct {
	Follow      bool          // keep polling after catching up
	MinInterval time.Duration // first poll interval after an empty batch
	MaxInterval time.Duration // adaptive poll interval ceiling
	Heartbeat   time.Duration // in follow mode, emit an empty batch this often so the position moves
	Retry       retry.Policy
	Log         io.Writer // retries and progress, may be nil
}

func (o *FollowOptions) defaults() {
	if o.MinInterval <= 0 {
		o.MinInterval = 50 * time.Millisecond
	}
	if o.MaxInterval <= 0 {
		o.MaxInterval = time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 10 * time.Second
	}
	if o.Retry.Attempts == 0 {
		o.Retry = retry.Default
	}
}

// BatchFunc runs one batch from pos, redoing it after transient faults is the caller's choice.
type BatchFunc func(ctx context.Context, from string, emitEmpty bool) (BatchResult, error)

// Loop runs batches from pos until caught up (or forever with Follow), each retried as a unit on
// transient faults. It returns the last position written.
func Loop(ctx context.Context, from string, opt FollowOptions, batch BatchFunc, afterBatch func(BatchResult) error) (string, error) {
	opt.defaults()
	pos := from
	interval := opt.MinInterval
	lastEmit := time.Now()
	applied := 0 // batches with changes in this run
	for {
		emitEmpty := !opt.Follow || time.Since(lastEmit) >= opt.Heartbeat
		var res BatchResult
		pol := opt.Retry
		pol.OnRetry = func(attempt int, err error, wait time.Duration) {
			if opt.Log != nil {
				fmt.Fprintf(opt.Log, "pgdelta: batch from %s failed (%v); retrying in %s (attempt %d of %d)\n", pos, err, wait, attempt+1, opt.Retry.Attempts)
			}
		}
		err := pol.Do(ctx, func(ctx context.Context) error {
			var err error
			res, err = batch(ctx, pos, emitEmpty)
			return err
		})
		if err != nil {
			return pos, err
		}
		if res.Emitted {
			pos = res.To
			lastEmit = time.Now()
			if afterBatch != nil {
				if err := afterBatch(res); err != nil {
					return pos, err
				}
			}
		}
		empty := res.Rows == 0 && res.Truncates == 0
		if !empty {
			interval = opt.MinInterval
			applied++
			// A source that never stops writing never gives an empty batch: without Follow, stop
			// once a batch begun after the first one ended is applied (then every change
			// committed before the first batch ended is on the target).
			if !opt.Follow && applied >= 2 {
				return pos, nil
			}
			continue
		}
		if !opt.Follow {
			return pos, nil
		}
		select {
		case <-ctx.Done():
			return pos, ctx.Err()
		case <-time.After(interval):
		}
		interval = min(interval*2, opt.MaxInterval)
	}
}

// SourceBatches returns a BatchFunc reading from the source through conns made by connect,
// reconnecting after a fault.
func SourceBatches(connect func(ctx context.Context) (*pgx.Conn, error), captureSchema string, maxBatch int64, sink func() Sink, onFault func()) BatchFunc {
	var conn *pgx.Conn
	return func(ctx context.Context, from string, emitEmpty bool) (BatchResult, error) {
		if conn == nil || conn.IsClosed() {
			c, err := connect(ctx)
			if err != nil {
				return BatchResult{}, err
			}
			conn = c
		}
		res, err := coverThenBatch(ctx, conn, captureSchema, maxBatch, from, sink(), emitEmpty, nil)
		if err != nil {
			if retry.Transient(err) {
				conn.Close(context.Background())
				conn = nil
			}
			if onFault != nil {
				onFault()
			}
		}
		return res, err
	}
}

// coverThenBatch adds the TRUNCATE capture to partitions created since install (before the
// batch's snapshot, so a TRUNCATE of one is captured from here on), then reads one batch. Each
// partition covered is said on log (may be nil).
func coverThenBatch(ctx context.Context, conn *pgx.Conn, captureSchema string, maxBatch int64, from string, sink Sink, emitEmpty bool, log io.Writer) (BatchResult, error) {
	if _, err := capture.CoverNewPartitions(ctx, conn, captureSchema, 0, log); err != nil {
		return BatchResult{}, err
	}
	r := &Reader{Conn: conn, CaptureSchema: captureSchema, MaxBatch: maxBatch}
	return r.Batch(ctx, from, sink, emitEmpty)
}
