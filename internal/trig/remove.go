package trig

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func removeCommand() *cli.Command {
	return &cli.Command{
		Name:      "remove",
		Usage:     "drop the capture triggers, functions and schema (source, or a target it was copied to)",
		UsageText: "pgtrig remove --source URL | --target URL [--lock-timeout 2s] [--retries 10] [--dry-run]",
		Description: `Drops every trigger that calls a function of the capture schema, one table per transaction
with the same lock timeout and retries as install, then pgtrig's own tables and functions and
the schema itself. Application objects are never dropped: if the schema holds anything pgtrig
did not create, remove stops and says so. Pending changes in the delta tables are discarded,
so run it after cutover. Removing twice is harmless.

   pgtrig remove --source "$SRC"
   pgtrig remove --target "$DST"    # if the capture schema was copied to the target`,
		Flags: append([]cli.Flag{dbconn.Flag(dbconn.Source), dbconn.Flag(dbconn.Target), captureSchemaFlag()}, lockFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cliutil.Usagef("unexpected argument %q", c.Args().First())
			}
			// A side named on the command line decides; the environment alone never clashes
			// (README exports both): then the source, unless only PGFERRY_TARGET is set.
			given := map[string]bool{
				"source": c.IsSet("source") && c.String("source") != os.Getenv("PGFERRY_SOURCE"),
				"target": c.IsSet("target") && c.String("target") != os.Getenv("PGFERRY_TARGET"),
			}
			role := dbconn.Source
			switch {
			case given["source"] && given["target"]:
				return cliutil.Usagef("give --source or --target, not both")
			case given["target"]:
				role = dbconn.Target
			case !given["source"] && os.Getenv("PGFERRY_SOURCE") == "" && os.Getenv("PGFERRY_TARGET") != "":
				role = dbconn.Target
			}
			lt, err := lockTimeout(c)
			if err != nil {
				return err
			}
			ctx := c.Context
			conn, err := connect(ctx, c, role)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			opt := capture.RemoveOptions{LockTimeout: lt, Retries: retries(c), Progress: os.Stderr}
			if c.Bool("dry-run") {
				opt.DryRun = os.Stdout
			}
			return capture.Remove(ctx, conn, c.String("capture-schema"), opt)
		},
	}
}
