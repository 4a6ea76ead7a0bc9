package trig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/retry"
)

func installCommand() *cli.Command {
	return &cli.Command{
		Name:      "install",
		Usage:     "capture changes on every selected table; prints the capture position",
		UsageText: "pgtrig install --source URL [-n SCHEMA] [-t TABLE] [-T TABLE] [--lock-timeout 2s] [--retries 10] [--force] [--dry-run] [--json]",
		Description: `Creates the capture schema, then for each table, in its own transaction: a delta table
holding the key columns and txid_current(), a SECURITY DEFINER trigger function, an AFTER
INSERT/UPDATE/DELETE row trigger (on a partitioned table's root, so every partition, also
future ones, is captured), a TRUNCATE trigger, and the registry row. Each transaction waits
at most --lock-timeout for the table's lock and is retried with backoff, so it never holds
two tables' locks and never stalls the application for long. Re-running installs only what
is missing (and adds the TRUNCATE trigger to partitions created since), and upgrades in place
trigger functions an older pgtrig made without the write fence check ('pgtrig fence').

A table whose schema changed since its capture was installed (dropped and re-created, columns
changed, a capture trigger dropped or disabled, a partition detached) is not re-captured: install
exits 3 naming it, because changes made meanwhile were not captured. Repair it with --force -t
TABLE, then copy it again (docs/runbook.md). When only the key changed and changes wait under the
old key, capture keeps the old key (pgdelta still applies them) unless --force.

Each install records its filters and the tables that exist, adding to what earlier installs
recorded: a table created later that they select, not captured, stops pgdelta (exit 3) as a new
table until it is captured and copied, or left out with 'pgtrig ignore' (whose tables install
does not capture).

Tables need a primary key or a unique index over NOT NULL columns; install refuses others
(see 'pgtrig check') unless they are excluded. Progress goes to stderr; the capture
position (a txid snapshot; catch-up from it covers every captured table) to stdout.

   pos=$(pgtrig install --source "$SRC" --exclude-table 'public.audit_log')
   pgtrig install --source "$SRC" --dry-run > capture.sql   # review first`,
		Flags: append(append([]cli.Flag{dbconn.Flag(dbconn.Source), captureSchemaFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print the result (position and tables) as one JSON object"},
			&cli.BoolFlag{Name: "force", EnvVars: []string{"PGFERRY_FORCE"}, Usage: "re-capture tables whose schema changed since install (re-created, columns, disabled or dropped triggers, detached partitions, a new key), dropping the changes waiting in their delta tables: copy those tables again afterwards"},
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
			ctx := c.Context
			opt := capture.InstallOptions{Schema: c.String("capture-schema"), Filter: f, LockTimeout: lt, Retries: retries(c), Progress: os.Stderr, Force: c.Bool("force")}
			if c.Bool("dry-run") {
				opt.DryRun = os.Stdout
			}
			res, err := installReconnecting(ctx, c, opt)
			if err != nil {
				return err
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

// installReconnecting runs the install, reconnecting after a lost connection: it rolls back only
// the table in flight and install is idempotent, so it carries on, a bounded number of times.
func installReconnecting(ctx context.Context, c *cli.Context, opt capture.InstallOptions) (*capture.InstallResult, error) {
	var res *capture.InstallResult
	lost := false
	pol := retry.Policy{Attempts: 3, Base: time.Second, Max: 2 * time.Second,
		Retryable: func(error) bool { return lost },
		OnRetry: func(_ int, err error, _ time.Duration) {
			logf("connection lost (%v); reconnecting and resuming the install", err)
		}}
	err := pol.Do(ctx, func(ctx context.Context) error {
		conn, err := connect(ctx, c, dbconn.Source)
		if lost = false; err != nil {
			return err
		}
		res, err = capture.Install(ctx, conn, opt)
		lost = err != nil && conn.IsClosed() && ctx.Err() == nil
		conn.Close(context.WithoutCancel(ctx))
		return err
	})
	if gu := (*retry.GaveUpError)(nil); errors.As(err, &gu) {
		err = gu.Err // the install's own error says what to do
	}
	return res, err
}
