package copyout

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/dbconn"
)

// identifySides fingerprints the source (for the stream header, so pgcopyin can refuse to load
// into it) and, with --target, refuses a target that is the source and, for a copy with
// catch-up, registers the target on the source before the snapshot is taken, so that no other
// target's pruning removes a change this one's catch-up will need.
func identifySides(ctx context.Context, cfg Config, src *pgx.Conn, stderr io.Writer) (dbconn.Identity, error) {
	srcID, err := dbconn.Identify(ctx, src, cfg.Source)
	if err != nil || cfg.Target == "" {
		return srcID, err
	}
	dst, err := dbconn.Connect(ctx, cfg.Target, dbconn.Target, dbconn.Options{AppName: "pgferry-pgcopyout"})
	if err != nil {
		return srcID, err
	}
	defer dst.Close(context.Background())
	dstID, err := dbconn.Identify(ctx, dst, cfg.Target)
	if err != nil {
		return srcID, fmt.Errorf("identify target: %w", err)
	}
	if err := dbconn.RefuseSame(srcID, dstID); err != nil {
		return srcID, err
	}
	if cfg.OneOff || cfg.PlanOnly {
		return srcID, nil
	}
	_, err = catchup.RegisterCopyTarget(ctx, src, dst, cfg.CaptureSchema, cfg.StateSchema, cfg.Target, "pgcopyout", stderr)
	return srcID, err
}
