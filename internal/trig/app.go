// Package trig is the pgtrig command line: check, install, mark, status, fence and remove change capture.
package trig

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

// Main runs the pgtrig command line and returns the exit code.
func Main(args []string) int {
	app := &cli.App{
		Name:  "pgtrig",
		Usage: "record which rows change on the source, with triggers, without superuser",
		Description: `pgtrig installs row triggers that record the key and txid of every changed row into
per-table delta tables in the capture schema (default "pgferry"), so pgdelta can catch the
target up after the copy. It needs no superuser, no extension beyond plpgsql, and locks one
table at a time for at most --lock-timeout per try.

   pgtrig check   --source "$SRC"                 # what would block the install
   pgtrig install --source "$SRC" -T 'audit_*'    # capture everything else; prints the position
   pgtrig status  --source "$SRC"
   pgtrig fence up --source "$SRC"                 # cutover: every captured table refuses writes
   pgtrig remove  --source "$SRC"                 # at the end; also --target if it was copied there`,
		Commands: []*cli.Command{checkCommand(), installCommand(), ignoreCommand(), markCommand(), statusCommand(), fenceCommand(), removeCommand()},
	}
	dbconn.AddNetTimeoutFlag(app)
	return cliutil.RunApp(app, args)
}

func captureSchemaFlag() cli.Flag {
	return cliutil.CaptureSchemaFlag("schema holding pgtrig's registry and delta tables")
}

func lockFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "lock-timeout", Value: capture.DefaultLockTimeout, EnvVars: []string{"PGFERRY_LOCK_TIMEOUT"},
			Usage: "longest wait for one table's lock per try; the application waits behind us at most this long"},
		&cli.IntFlag{Name: "retries", Value: capture.DefaultRetries, EnvVars: []string{"PGFERRY_RETRIES"},
			Usage: "tries again per table after a lock timeout, with backoff (1s, 2s, 4s ... 30s)"},
		&cli.BoolFlag{Name: "dry-run", EnvVars: []string{"PGFERRY_DRY_RUN"}, Usage: "print the SQL on stdout instead of running it"},
	}
}

func retries(c *cli.Context) int {
	if n := c.Int("retries"); n > 0 {
		return n
	}
	return -1
}

func lockTimeout(c *cli.Context) (time.Duration, error) {
	d := c.Duration("lock-timeout")
	if d <= 0 {
		return 0, cliutil.Usagef("--lock-timeout must be positive, e.g. 2s")
	}
	return d, nil
}

func connect(ctx context.Context, c *cli.Context, r dbconn.Role) (*pgx.Conn, error) {
	return dbconn.Connect(ctx, dbconn.Resolve(c.String(string(r)), r), r, dbconn.Options{AppName: "pgferry-trig"})
}

// onSource runs fn with one source connection: the common frame of the read-only commands
// (no positional arguments, a context cancelled by SIGINT/SIGTERM).
func onSource(c *cli.Context, fn func(ctx context.Context, conn *pgx.Conn) error) error {
	if c.NArg() > 0 {
		return cliutil.Usagef("unexpected argument %q", c.Args().First())
	}
	ctx := c.Context
	conn, err := connect(ctx, c, dbconn.Source)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return fn(ctx, conn)
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "pgtrig: "+format+"\n", args...) }
