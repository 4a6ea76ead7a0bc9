package delta

import (
	"context"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/retry"
	"github.com/pgferry/pgferry/internal/state"
)

// SyncOptions configure Sync.
type SyncOptions struct {
	ConnectSource func(ctx context.Context) (*pgx.Conn, error)
	ConnectTarget func(ctx context.Context) (*pgx.Conn, error)
	CaptureSchema string
	StateSchema   string
	From          string // start here instead of the target's position
	MaxBatch      int64
	PruneEvery    time.Duration // 0 = after every batch; negative = never
	Follow        FollowOptions
	Log           io.Writer
	ProgressEvery time.Duration // with Follow.Follow, log applied batches and lag at most this often (0 = a minute)
	// SourceURL and TargetURL are the connection strings, for messages and for the target's
	// entry in the source's registry (without password).
	SourceURL, TargetURL string
	// PartitionRemoved is what a partition the source dropped becomes on the target (detach.go).
	PartitionRemoved string
}

// SyncResult summarises a Sync run.
type SyncResult struct {
	Position string
	Batches  int64
	Rows     int64
	Pruned   int64
}

// Sync reads batches from the source and applies them to the target in one process, pruning the
// source's delta tables behind the target's confirmed position.
func Sync(ctx context.Context, o SyncOptions) (SyncResult, error) {
	res, err := syncLoop(ctx, o)
	if err != nil && ctx.Err() != nil {
		// Cancelled: report the cancellation itself, not how the query in flight noticed it.
		return res, ctx.Err()
	}
	return res, err
}

func syncLoop(ctx context.Context, o SyncOptions) (SyncResult, error) {
	var res SyncResult
	src, err := o.ConnectSource(ctx)
	if err != nil {
		return res, err
	}
	dst, err := o.ConnectTarget(ctx)
	if err != nil {
		src.Close(context.Background())
		return res, err
	}
	defer func() {
		if src != nil {
			src.Close(context.Background())
		}
		if dst != nil {
			dst.Close(context.Background())
		}
	}()
	from, reg, err := startSync(ctx, o, src, dst)
	if err != nil {
		return res, err
	}
	ap, err := NewApplier(ctx, dst, o.StateSchema)
	if err != nil {
		return res, err
	}
	ap.PartitionRemoved, ap.Log = o.PartitionRemoved, o.Log
	warnTriggers(ctx, dst, o.CaptureSchema, o.Log)
	horizon := &horizonGuard{captureSchema: o.CaptureSchema}
	reconnect := func(ctx context.Context) error {
		if src == nil || src.IsClosed() {
			c, err := o.ConnectSource(ctx)
			if err != nil {
				return err
			}
			src = c
		}
		if dst == nil || dst.IsClosed() || ap == nil {
			c, err := o.ConnectTarget(ctx)
			if err != nil {
				return err
			}
			dst = c
			if ap, err = NewApplier(ctx, dst, o.StateSchema); err != nil {
				return err
			}
			ap.PartitionRemoved, ap.Log = o.PartitionRemoved, o.Log
		}
		return nil
	}
	batch := func(ctx context.Context, from string, emitEmpty bool) (BatchResult, error) {
		if err := reconnect(ctx); err != nil {
			return BatchResult{}, err
		}
		br, err := coverThenBatch(ctx, src, o.CaptureSchema, o.MaxBatch, from, ap.AsSink(ctx), emitEmpty, o.Log)
		if err == nil {
			err = horizon.check(ctx, src, from) // a registration forgotten or never made
		}
		if err != nil {
			ap.Abort(ctx)
			if retry.Transient(err) {
				src.Close(context.Background())
				dst.Close(context.Background())
				src, dst, ap = nil, nil, nil
			}
		}
		return br, err
	}
	after := confirmer(ctx, o, &src, &dst, reg, &res)
	o.Follow.Log = o.Log
	pos, err := Loop(ctx, from, o.Follow, batch, after)
	res.Position = pos
	if err != nil && ctx.Err() == nil {
		recordError(o, err)
	}
	return res, err
}

// recordError writes err as the target's last_error, on a fresh connection, best effort.
func recordError(o SyncOptions, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, cerr := o.ConnectTarget(ctx)
	if cerr != nil {
		return
	}
	defer c.Close(ctx)
	state.WriteApplyError(ctx, c, o.StateSchema, err.Error())
}
