package delta

import (
	"errors"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/state"
)

func applyCommand() *cli.Command {
	return &cli.Command{
		Name:      "apply",
		Usage:     "apply JSON-lines delta records from stdin to the target",
		UsageText: `pgdelta apply --target URL < changes.jsonl`,
		Description: `Applies each batch in one target transaction: per table, DELETE of every key of the batch, then
INSERT of the present rows (staged with COPY), and the batch's end position is recorded in the
same transaction. A detach_partition or drop_partition record detaches that partition on the
target (and drops it, unless --partition-removed keep) before the batch's rows are applied.
A bad line, an unknown table or column stops it with the line number and table;
nothing of that batch is committed. A batch that starts after the target's position is refused,
and so is a stream whose begin record names this database as its source (exit 2, nothing written).

   pgdelta stream --source "$SRC" --from "$(pgdelta position --target "$DST")" | pgdelta apply --target "$DST"`,
		Flags: []cli.Flag{dbconn.Flag(dbconn.Target), stateSchemaFlag(), captureSchemaFlag(),
			&cli.BoolFlag{Name: "no-position-check", Usage: "apply batches even if they start after the target's recorded position (may lose changes)"},
			partitionRemovedFlag(),
		},
		Action: func(c *cli.Context) error {
			removed, err := partitionRemoved(c)
			if err != nil {
				return err
			}
			ctx := c.Context
			conn, err := connector(c, dbconn.Target)(ctx)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			source, input := peekSource(os.Stdin) // nothing is written before the source is known
			if err := refuseStreamSource(ctx, conn, source, urlOf(c, dbconn.Target)); err != nil {
				return err
			}
			a, err := NewApplier(ctx, conn, c.String("state-schema"))
			if err != nil {
				return err
			}
			a.NoCheck = c.Bool("no-position-check")
			a.PartitionRemoved, a.Log = removed, os.Stderr
			warnTriggers(ctx, conn, c.String("capture-schema"), os.Stderr)
			err = ApplyInput(ctx, a, input)
			if errors.Is(err, ErrNoInput) { // nothing to record: no batch was seen
				return cliutil.WithHint(cliutil.ExitFailure, err, "the stream's producer failed before writing anything (e.g. a wrong password for 'pgdelta stream'); see its error above, and use 'set -o pipefail'")
			}
			if err != nil && ctx.Err() == nil {
				if !conn.IsClosed() {
					state.WriteApplyError(ctx, conn, c.String("state-schema"), err.Error())
				}
				if errors.As(err, new(*GapError)) {
					return cliutil.WithHint(cliutil.ExitFailure, err, `restart the stream with --from "$(pgdelta position --target ...)"`)
				}
				return cliutil.WithHint(cliutil.ExitFailure, err, "fix the input or the target's schema, then restart the stream from 'pgdelta position'; applied batches are kept")
			}
			if a.Batches > 0 {
				logf("applied %d batches, %d rows, now at %s", a.Batches, a.Rows, a.LastTo)
			}
			return err
		},
	}
}
