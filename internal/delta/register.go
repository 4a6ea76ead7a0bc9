package delta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/state"
)

// confirmEvery is how often a follower that does not prune still confirms its position.
const confirmEvery = 10 * time.Second

// startSync checks, before anything is written, that the target is not the source and that
// the start position lacks nothing pruned; then it registers the target on the source. It
// returns the start position and the registration (nil when the registry may not be written:
// the run then does not prune).
func startSync(ctx context.Context, o SyncOptions, src, dst *pgx.Conn) (string, *catchup.Registration, error) {
	if err := dbconn.CheckDistinct(ctx, src, dst, o.SourceURL, o.TargetURL); err != nil {
		return "", nil, err
	}
	from := o.From
	if from == "" {
		pos, err := catchup.TargetPosition(ctx, dst, o.StateSchema)
		if err != nil {
			return "", nil, err
		}
		from = pos.Position
	}
	if from == "" {
		return "", nil, catchup.ErrNoPosition
	}
	if err := CheckHorizon(ctx, src, o.CaptureSchema, from); err != nil {
		return "", nil, err
	}
	if err := CheckNotFuture(ctx, src, from); err != nil {
		return "", nil, err
	}
	reg, err := RegisterHere(ctx, src, dst, o.CaptureSchema, o.StateSchema, o.TargetURL, from, o.Log)
	return from, reg, err
}

// RegisterHere registers the target dst at pos in src's registry (creating the target's id).
// When the registry may not be written it says so on log and returns nil: do not prune then.
func RegisterHere(ctx context.Context, src, dst *pgx.Conn, captureSchema, stateSchema, targetURL, pos string, log io.Writer) (*catchup.Registration, error) {
	id, err := state.TargetID(ctx, dst, stateSchema)
	if err != nil {
		return nil, err
	}
	reg := &catchup.Registration{ID: id, Where: catchup.TargetWhere(targetURL, stateSchema), Position: pos}
	err = catchup.RegisterTarget(ctx, src, captureSchema, *reg)
	if catchup.CannotRegister(err) {
		if log != nil {
			fmt.Fprintf(log, "pgdelta: cannot register this target on the source (%v): not pruning in this run, so no other target can lose changes to it\n", err)
		}
		return nil, nil
	}
	if err != nil {
		return nil, prunedError(err)
	}
	return reg, nil
}

// prunedError gives a *PrunedError its hint.
func prunedError(err error) error {
	if errors.As(err, new(*catchup.PrunedError)) {
		return cliutil.WithHint(cliutil.ExitFailure, err, catchup.PrunedHint)
	}
	return err
}

// confirmer returns Sync's after-batch step: after a batch that removed partitions it forgets
// them in the source's registry (detach.go); every PruneEvery (confirmEvery when not pruning)
// it records the applied position in the registry and prunes what every target holds.
func confirmer(ctx context.Context, o SyncOptions, src, dst **pgx.Conn, reg *catchup.Registration, res *SyncResult) func(BatchResult) error {
	every := o.PruneEvery
	if every < 0 {
		every = confirmEvery
	}
	var last time.Time
	var prog *progressLog
	if o.Follow.Follow {
		prog = newProgressLog(o.Log, o.ProgressEvery, time.Now)
	}
	return func(br BatchResult) error {
		prog.add(br)
		res.Batches++
		res.Rows += br.Rows
		if len(br.Removed) > 0 {
			if _, err := forgetRemovedPartitions(ctx, *src, *dst, o.CaptureSchema, o.Log); err != nil && o.Log != nil {
				fmt.Fprintf(o.Log, "pgdelta: %v (will try again after the next batch)\n", err)
			}
		}
		if reg == nil || time.Since(last) < every {
			return nil
		}
		last = time.Now()
		reg.Position = br.To
		var n int64
		var err error
		if o.PruneEvery < 0 {
			err = catchup.RegisterTarget(ctx, *src, o.CaptureSchema, *reg)
		} else {
			n, _, err = PruneFor(ctx, *src, o.CaptureSchema, *reg)
		}
		if errors.As(err, new(*catchup.PrunedError)) {
			return prunedError(err)
		}
		if err != nil && o.Log != nil {
			fmt.Fprintf(o.Log, "pgdelta: %v (will try again after the next batch)\n", err)
		}
		res.Pruned += n
		return nil
	}
}

// horizonGuard checks positions against the prune horizon, remembering once the registry exists.
type horizonGuard struct {
	captureSchema string
	exists        bool
}

func (g *horizonGuard) check(ctx context.Context, q state.Queryer, pos string) error {
	if !g.exists {
		if err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", quotedCS(g.captureSchema)+".prune_horizon").Scan(&g.exists); err != nil {
			return fmt.Errorf("read prune horizon: %w", err)
		}
		if !g.exists {
			return nil
		}
	}
	var h *string
	if err := q.QueryRow(ctx, "SELECT (SELECT position FROM "+quotedCS(g.captureSchema)+".prune_horizon WHERE id = 1)").Scan(&h); err != nil {
		return fmt.Errorf("read prune horizon: %w", err)
	}
	if h == nil {
		return nil
	}
	return prunedError(catchup.Holds(pos, *h))
}

// horizonChecked wraps batch: after each batch, the position it started from is checked against
// the prune horizon on a connection of its own (opened by connect when needed), so a reader
// that no registration protects stops once another target's pruning passes it. close ends
// that connection.
func horizonChecked(batch BatchFunc, connect func(context.Context) (*pgx.Conn, error), captureSchema string) (checked BatchFunc, close func()) {
	g := &horizonGuard{captureSchema: captureSchema}
	var conn *pgx.Conn
	checked = func(ctx context.Context, from string, emitEmpty bool) (BatchResult, error) {
		res, err := batch(ctx, from, emitEmpty)
		if err != nil {
			return res, err
		}
		if conn == nil || conn.IsClosed() {
			if conn, err = connect(ctx); err != nil {
				return res, err
			}
		}
		return res, g.check(ctx, conn, from)
	}
	return checked, func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}
}
