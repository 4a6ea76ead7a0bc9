package trig

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func installCommand() *cli.Command {
	return &cli.Command{
		Name:      "install",
		Usage:     "capture changes on every selected table; prints the capture position",
		UsageText: "pgtrig install --source URL [-n SCHEMA] [-t TABLE] [-T TABLE] [--lock-timeout 2s] [--retries 10] [--dry-run] [--json]",
		Description: `Creates the capture schema, then for each table, in its own transaction: a delta table
holding the key columns and txid_current(), a SECURITY DEFINER trigger function, an AFTER
INSERT/UPDATE/DELETE row trigger (on a partitioned table's root, so every partition, also
future ones, is captured), a TRUNCATE trigger, and the registry row. Each transaction waits
at most --lock-timeout for the table's lock and is retried with backoff, so it never holds
two tables' locks and never stalls the application for long. Re-running installs only what
is missing (and adds the TRUNCATE trigger to partitions created since), and upgrades in place
trigger functions an older pgtrig made without the write fence check ('pgtrig fence').

Tables need a primary key or a unique index over NOT NULL columns; install refuses others
(see 'pgtrig check') unless they are excluded. Progress goes to stderr; the capture
position (a txid snapshot; catch-up from it covers every captured table) to stdout.

   pos=$(pgtrig install --source "$SRC" --exclude-table 'public.audit_log')
   pgtrig install --source "$SRC" --dry-run > capture.sql   # review first`,
		Flags: append(append([]cli.Flag{dbconn.Flag(dbconn.Source), captureSchemaFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print the result (position and tables) as one JSON object"},
		}, lockFlags()...), catalog.FilterFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cliutil.Usagef("unexpected argument %q", c.Args().First())
			}
			f, err := catalog.FilterFromCLI(c)
			if err != nil {
				return cliutil.WithCode(cliutil.ExitUsage, err)
			}
			lt, err := lockTimeout(c)
			if err != nil {
				return err
			}
			ctx, cancel := cliutil.SignalContext()
			defer cancel()
			opt := capture.InstallOptions{Schema: c.String("capture-schema"), Filter: f, LockTimeout: lt, Retries: retries(c), Progress: os.Stderr}
			if c.Bool("dry-run") {
				opt.DryRun = os.Stdout
			}
			// A lost connection rolls back only the table in flight; install is idempotent, so
			// reconnect and carry on, a bounded number of times.
			var res *capture.InstallResult
			for attempt := 1; ; attempt++ {
				conn, err := connect(ctx, c, dbconn.Source)
				if err != nil {
					return err
				}
				res, err = capture.Install(ctx, conn, opt)
				lost := err != nil && conn.IsClosed() && ctx.Err() == nil
				conn.Close(context.WithoutCancel(ctx))
				if err == nil {
					break
				}
				if !lost || attempt >= 3 {
					return err
				}
				logf("connection lost (%v); reconnecting and resuming the install", err)
				time.Sleep(time.Duration(attempt) * time.Second)
			}
			if opt.DryRun != nil {
				return nil
			}
			logf("%d table(s) captured, %d newly installed", len(res.Tables), len(res.Installed))
			if c.Bool("json") {
				b, _ := json.Marshal(res)
				fmt.Println(string(b))
				return nil
			}
			fmt.Println(res.Position)
			return nil
		},
	}
}
