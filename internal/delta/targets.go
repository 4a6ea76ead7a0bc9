package delta

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/state"
)

// PruneFor records reg's confirmed position and prunes what every registered target holds; it
// returns the rows removed and the position pruned up to. RegisterTarget must have run.
func PruneFor(ctx context.Context, src *pgx.Conn, captureSchema string, reg catchup.Registration) (int64, string, error) {
	meet, err := catchup.Advance(ctx, src, ident.Quote(orDefault(captureSchema)), reg)
	if err != nil {
		return 0, "", err
	}
	n, err := Prune(ctx, src, captureSchema, meet)
	return n, meet, err
}

// CheckHorizon returns a *PrunedError when pos lacks changes pruning has removed (nil when the
// source has no registry: nothing was pruned under it).
func CheckHorizon(ctx context.Context, q state.Queryer, captureSchema, pos string) error {
	return (&horizonGuard{captureSchema: captureSchema}).check(ctx, q, pos)
}

// FutureError is a start position ahead of the source's current snapshot: a position from another
// server, or from a source restored from an older backup. Streaming from it would go backwards.
type FutureError struct{ From, Current string }

func (e *FutureError) Error() string {
	return fmt.Sprintf("position %s is ahead of the source's current position %s (it comes from another server or from the future)", e.From, e.Current)
}

// CheckNotFuture returns a *FutureError when pos's xmax is beyond the source's current
// txid_current_snapshot() xmax (no position taken on this source can be).
func CheckNotFuture(ctx context.Context, q state.Queryer, pos string) error {
	p, err := catchup.ParseSnapshot(pos)
	if err != nil {
		return err
	}
	var cur string
	if err := q.QueryRow(ctx, "SELECT txid_current_snapshot()::text").Scan(&cur); err != nil {
		return fmt.Errorf("read source position: %w", err)
	}
	c, err := catchup.ParseSnapshot(cur)
	if err != nil {
		return err
	}
	if p.Xmin > c.Xmax || p.Xmax > c.Xmax {
		return &FutureError{From: pos, Current: cur}
	}
	return nil
}
