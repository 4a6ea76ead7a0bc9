package delta

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func syncCommand() *cli.Command {
	return &cli.Command{
		Name:      "sync",
		Usage:     "stream and apply in one process, pruning the source's delta tables as the target confirms",
		UsageText: `pgdelta sync --source URL --target URL [--follow | --until-caught-up] [--from POSITION]`,
		Description: `Starts from the target's position (the last applied batch, else the copy's position) and
applies batches until caught up, or keeps following with --follow. Lost connections redo the batch.
It refuses a target that is the source (exit 2), registers the target on the source, and prunes
only what every registered target has applied (see 'pgdelta targets'); a target whose position
another target's pruning has already passed is refused before anything is written to it.
Each batch first adds the TRUNCATE capture to partitions created since install, applies the rows
of partitions attached since, and checks every captured table against what pgtrig install
recorded: a table dropped or re-created, changed columns, or a capture trigger dropped or
disabled stops it with exit 3, naming the table, the change and the repair (docs/runbook.md,
"Schema changes during the migration"). A partition DETACHed on the source is detached on the
target too (with its rows as they were when it left; it is not followed after that); one the
source DROPs is detached and dropped on the target, or only detached with --partition-removed keep.

   pgdelta sync --source "$SRC" --target "$DST" --follow &`,
		Flags: append([]cli.Flag{dbconn.Flag(dbconn.Source), dbconn.Flag(dbconn.Target), captureSchemaFlag(), stateSchemaFlag(),
			&cli.StringFlag{Name: "from", EnvVars: []string{"PGFERRY_FROM"}, Usage: "start after this position instead of the target's (e.g. pgdelta position --fork)"},
			&cli.DurationFlag{Name: "log-every", Value: time.Minute, EnvVars: []string{"PGFERRY_LOG_EVERY"}, Usage: "with --follow, log the batches, rows and lag applied at most this often (when batches were applied)"},
			&cli.DurationFlag{Name: "prune-every", Value: 10 * time.Second, EnvVars: []string{"PGFERRY_PRUNE_EVERY"}, Usage: "prune the source's applied delta rows at most this often (negative: never)"},
			partitionRemovedFlag(),
		}, followFlags()...),
		Action: func(c *cli.Context) error {
			if f := c.String("from"); f != "" {
				if _, err := catchup.ParseSnapshot(f); err != nil {
					return cliutil.Usagef("--from: %v", err)
				}
			}
			removed, err := partitionRemoved(c)
			if err != nil {
				return err
			}
			ctx := c.Context
			log := io.Writer(os.Stderr)
			if !cliutil.IsTerminal(os.Stderr) { // a log file (sync.log): every line says when
				log = StampLines(os.Stderr, time.Now)
				c.App.ErrWriter = log
			}
			res, err := Sync(ctx, SyncOptions{
				ConnectSource: connector(c, dbconn.Source), ConnectTarget: connector(c, dbconn.Target),
				CaptureSchema: c.String("capture-schema"), StateSchema: c.String("state-schema"),
				From: c.String("from"), MaxBatch: c.Int64("max-batch"), PruneEvery: c.Duration("prune-every"),
				Follow: followOptions(c), Log: log, ProgressEvery: c.Duration("log-every"),
				SourceURL: urlOf(c, dbconn.Source), TargetURL: urlOf(c, dbconn.Target), PartitionRemoved: removed,
			})
			if res.Batches > 0 {
				fmt.Fprintf(log, "pgdelta: applied %d batches, %d rows, pruned %d delta rows, now at %s\n", res.Batches, res.Rows, res.Pruned, res.Position)
			}
			return noPosition(err)
		},
	}
}
