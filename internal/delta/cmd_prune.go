package delta

import (
	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:      "prune",
		Usage:     "delete the source's delta rows the target has applied",
		UsageText: `pgdelta prune --source URL --target URL`,
		Description: `Removes from the source's delta tables every change visible in the target's apply position,
so they do not grow without bound ('pgdelta sync' does this as it goes).

   pgdelta prune --source "$SRC" --target "$DST"`,
		Flags: []cli.Flag{dbconn.Flag(dbconn.Source), dbconn.Flag(dbconn.Target), captureSchemaFlag(), stateSchemaFlag()},
		Action: func(c *cli.Context) error {
			ctx, cancel := cliutil.SignalContext()
			defer cancel()
			dst, err := connector(c, dbconn.Target)(ctx)
			if err != nil {
				return err
			}
			defer dst.Close(ctx)
			pos, err := TargetPosition(ctx, dst, c.String("state-schema"))
			if err != nil {
				return err
			}
			if pos.Origin != "apply" {
				logf("nothing applied on the target yet; nothing to prune")
				return nil
			}
			src, err := connector(c, dbconn.Source)(ctx)
			if err != nil {
				return err
			}
			defer src.Close(ctx)
			n, err := Prune(ctx, src, c.String("capture-schema"), pos.Position)
			if err != nil {
				return err
			}
			logf("pruned %d delta rows up to %s", n, pos.Position)
			return nil
		},
	}
}
