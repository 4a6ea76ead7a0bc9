// Package delta streams captured changes from the source as snapshot batches and applies them to the target.
package delta

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

// Main runs the pgdelta command line and returns the exit code.
func Main(args []string) int {
	app := &cli.App{
		Name:  "pgdelta",
		Usage: "stream captured changes from the source and apply them to the target until both are equal",
		Description: `pgdelta reads the changes pgtrig captured on the source in snapshot batches and applies
them to the target idempotently: re-applying a batch, or starting earlier than needed, is harmless.

Everyday use (one process, prunes the source's delta tables as it goes):
   pgdelta sync --source "$SRC" --target "$DST" --follow

The same through a pipe, e.g. across machines:
   pgdelta stream --source "$SRC" --from "$(pgdelta position --target "$DST")" --follow \
     | pv -l | pgdelta apply --target "$DST"`,
		Commands: []*cli.Command{
			streamCommand(), applyCommand(), syncCommand(), positionCommand(),
			statusCommand(), pruneCommand(), sequencesCommand(), targetsCommand(), loSyncCommand(),
		},
	}
	dbconn.AddNetTimeoutFlag(app)
	return cliutil.RunApp(app, args)
}

func captureSchemaFlag() cli.Flag {
	return cliutil.CaptureSchemaFlag("schema holding pgtrig's capture tables on the source")
}

func partitionRemovedFlag() cli.Flag {
	return &cli.StringFlag{Name: "partition-removed", Value: PartitionFollow, EnvVars: []string{"PGFERRY_PARTITION_REMOVED"},
		Usage: "a partition the source DROPs: 'follow' detaches and drops it on the target too, 'keep' detaches it and keeps its table and rows there " +
			"(a DETACHed one is detached on the target either way); the target's parent returns what the source's returns"}
}

// partitionRemoved reads --partition-removed (a usage error, exit 2, when unknown).
func partitionRemoved(c *cli.Context) (string, error) {
	v, err := ParsePartitionRemoved(c.String("partition-removed"))
	if err != nil {
		return "", cliutil.Usagef("--partition-removed: %v", err)
	}
	return v, nil
}

func stateSchemaFlag() cli.Flag {
	return cliutil.StateSchemaFlag("schema holding pgferry's state on the target")
}

// urlOf is the connection string of side r: its flag, else its variable, else DATABASE_URL.
func urlOf(c *cli.Context, r dbconn.Role) string { return dbconn.Resolve(c.String(string(r)), r) }

func connector(c *cli.Context, r dbconn.Role) func(ctx context.Context) (*pgx.Conn, error) {
	url := urlOf(c, r)
	return func(ctx context.Context) (*pgx.Conn, error) {
		return dbconn.Connect(ctx, url, r, dbconn.Options{AppName: "pgferry-delta"})
	}
}

// connectBoth opens the source and then the target connection, and refuses (exit 2) when they
// are one database; close closes whichever opened.
func connectBoth(ctx context.Context, c *cli.Context) (src, dst *pgx.Conn, close func(), err error) {
	if src, err = connector(c, dbconn.Source)(ctx); err != nil {
		return nil, nil, nil, err
	}
	if dst, err = connector(c, dbconn.Target)(ctx); err != nil {
		src.Close(ctx)
		return nil, nil, nil, err
	}
	if err := dbconn.CheckDistinct(ctx, src, dst, urlOf(c, dbconn.Source), urlOf(c, dbconn.Target)); err != nil {
		dst.Close(ctx)
		src.Close(ctx)
		return nil, nil, nil, err
	}
	return src, dst, func() { dst.Close(ctx); src.Close(ctx) }, nil
}

// positionHint tells the operator how to get a start position.
const positionHint = "load the copy first (pgcopyout | pgcopyin records its position), or give 'pgdelta sync' or 'pgdelta stream' --from POSITION (pgdelta position --fork, pgtrig install prints one)"

// noPosition adds the hint to a missing or impossible start position.
func noPosition(err error) error {
	if errors.Is(err, catchup.ErrNoPosition) {
		return cliutil.WithHint(cliutil.ExitFailure, err, positionHint)
	}
	if errors.As(err, new(*FutureError)) {
		return cliutil.WithHint(cliutil.ExitFailure, err, `take the position from the target: --from "$(pgdelta position --target "$DST")"`)
	}
	return err
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "pgdelta: "+format+"\n", args...) }
