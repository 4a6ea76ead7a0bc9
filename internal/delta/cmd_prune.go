package delta

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/dbconn"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:      "prune",
		Usage:     "delete the source's delta rows the target has applied",
		UsageText: `pgdelta prune --source URL --target URL`,
		Description: `Removes from the source's delta tables every change visible in the target's apply position
and in the position of every other target registered on the source, so they do not grow without
bound ('pgdelta sync' does this as it goes). It registers the target first: a target fed by
'pgdelta stream | pgdelta apply' is protected from other targets' pruning once this ran.

   pgdelta prune --source "$SRC" --target "$DST"`,
		Flags: []cli.Flag{dbconn.Flag(dbconn.Source), dbconn.Flag(dbconn.Target), captureSchemaFlag(), stateSchemaFlag()},
		Action: func(c *cli.Context) error {
			ctx := c.Context
			src, dst, closeConns, err := connectBoth(ctx, c)
			if err != nil {
				return err
			}
			defer closeConns()
			n, pos, err := PruneTarget(ctx, src, dst, c.String("capture-schema"), c.String("state-schema"), urlOf(c, dbconn.Target), os.Stderr)
			switch {
			case err != nil:
				return noPosition(err)
			case pos == "":
				logf("nothing applied on the target yet; registered it on the source at its copy position, nothing pruned")
			default:
				logf("pruned %d delta rows up to %s", n, pos)
			}
			return nil
		},
	}
}
