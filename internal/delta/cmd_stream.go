package delta

import (
	"context"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/deltarec"
)

func followFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "follow", EnvVars: []string{"PGFERRY_FOLLOW"}, Usage: "keep polling for new changes after catching up (stop with Ctrl-C)"},
		&cli.BoolFlag{Name: "until-caught-up", EnvVars: []string{"PGFERRY_UNTIL_CAUGHT_UP"}, Usage: "stop at the first empty batch, or after a second batch with changes when the source never stops writing (the default without --follow)"},
		&cli.Int64Flag{Name: "max-batch", EnvVars: []string{"PGFERRY_MAX_BATCH"}, Usage: "rows after which a big batch is committed in parts on the target (0 = one transaction per batch); the position still moves only at the batch's end"},
		&cli.DurationFlag{Name: "max-interval", Value: time.Second, EnvVars: []string{"PGFERRY_MAX_INTERVAL"}, Usage: "longest wait between polls when idle (--follow)"},
	}
}

func followOptions(c *cli.Context) FollowOptions {
	return FollowOptions{Follow: c.Bool("follow") && !c.Bool("until-caught-up"), MaxInterval: c.Duration("max-interval"), Log: os.Stderr}
}

func streamCommand() *cli.Command {
	return &cli.Command{
		Name:      "stream",
		Usage:     "write captured changes after --from as JSON-lines delta records to stdout",
		UsageText: `pgdelta stream --source URL --from POSITION [--follow | --until-caught-up] [--max-batch N] > changes.jsonl`,
		Description: `Reads snapshot batches: each batch holds the keys changed by transactions visible in a new
snapshot and not in the previous one, with each key's current row (upsert) or its absence (delete).
Without --follow it stops when caught up. The format is described in docs/delta-format.md.
A schema change of a captured table that capture cannot follow stops it with exit 3, naming the
table, the change and the repair, as 'pgdelta sync' does; a partition detached or dropped is
written as a detach_partition or drop_partition record instead, for 'pgdelta apply' to follow.

   pgdelta stream --source "$SRC" --from "$(pgdelta position --target "$DST")" --follow | pgdelta apply --target "$DST"`,
		Flags: append([]cli.Flag{dbconn.Flag(dbconn.Source), captureSchemaFlag(),
			&cli.StringFlag{Name: "from", EnvVars: []string{"PGFERRY_FROM"}, Usage: "position to start after (txid_current_snapshot text), e.g. from 'pgdelta position'", Required: true},
		}, followFlags()...),
		Action: func(c *cli.Context) error {
			if _, err := catchup.ParseSnapshot(c.String("from")); err != nil {
				return cliutil.Usagef("--from: %v", err)
			}
			ctx := c.Context
			connect := connector(c, dbconn.Source)
			first, err := connect(ctx)
			if err != nil {
				return err
			}
			id, err := dbconn.Identify(ctx, first, urlOf(c, dbconn.Source))
			if err != nil {
				first.Close(ctx)
				return err
			}
			if err := CheckHorizon(ctx, first, c.String("capture-schema"), c.String("from")); err != nil {
				first.Close(ctx)
				return err
			}
			if err := CheckNotFuture(ctx, first, c.String("from")); err != nil {
				first.Close(ctx)
				return noPosition(err)
			}
			used := false
			w := deltarec.NewWriter(os.Stdout)
			w.Source = id.Token() // pgdelta apply refuses a target that is this database
			batch := SourceBatches(func(ctx context.Context) (*pgx.Conn, error) {
				if !used {
					used = true
					return first, nil
				}
				return connect(ctx)
			}, c.String("capture-schema"), c.Int64("max-batch"), func() Sink { return w }, nil)
			batch, closeGuard := horizonChecked(batch, connect, c.String("capture-schema"))
			defer closeGuard()
			flushing := func(ctx context.Context, from string, emitEmpty bool) (BatchResult, error) {
				res, err := batch(ctx, from, emitEmpty)
				if ferr := w.Flush(); err == nil && ferr != nil {
					return res, ferr
				}
				return res, err
			}
			_, err = Loop(ctx, c.String("from"), followOptions(c), flushing, nil)
			return err
		},
	}
}
