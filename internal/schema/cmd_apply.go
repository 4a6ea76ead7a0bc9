package schema

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/applyplan"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func applyCommand() *cli.Command {
	return &cli.Command{
		Name:      "apply",
		Usage:     "run a schema script on the target, in parallel where statements are independent",
		UsageText: "pgschema apply --target URL [-j N] [--parallel-workers auto|N] [--maintenance-work-mem SIZE] [--dry-run] < section.sql",
		Description: `Runs the statements of a pg_dump-style script with N connections, like pg_restore -j:
index builds and constraints on different tables run in parallel; statements on the same
table keep their order (a statement may overtake one that waits for a busy table); anything
else (CREATE TABLE, functions, SET, ...) waits for all earlier statements and runs alone. SET statements are replayed on every connection.
Stops at the first error with its line, the statement and the server's message (exit 1).
A lost connection redoes the statement on a new connection.

PostgreSQL 11+ already builds one index with parallel workers that split its
maintenance_work_mem: with -j 4, four builds each starting their own workers oversubscribe the
cores and ran slower than -j 1. So by default (--parallel-workers auto) each of the N
connections gets max_parallel_maintenance_workers = the server's value / N, rounded down (with
-j 1 the server's value is kept); --maintenance-work-mem sets the memory of each build. Both
are session SETs, redone after a reconnect; a SET in the script itself still wins.

Example:
   pgschema dump --source $SRC --section indexes | pgschema apply --target $DST -j 4
   pgschema dump --source $SRC --section indexes | pgschema apply --target $DST -j 2 --maintenance-work-mem 1GB`,
		Flags: append([]cli.Flag{
			dbconn.Flag(dbconn.Target),
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 1, EnvVars: []string{"PGFERRY_JOBS"}, Usage: "connections to use"},
			&cli.BoolFlag{Name: "dry-run", EnvVars: []string{"PGFERRY_DRY_RUN"}, Usage: "print the plan (statement, line, tables, parallel or barrier) and change nothing"},
			&cli.BoolFlag{Name: "skip-existing", EnvVars: []string{"PGFERRY_SKIP_EXISTING"}, Usage: "treat 'already exists' errors as done (to finish a section after a failure); run 'pgschema diff' afterwards"},
		}, applyplan.BuildSettingsFlags(tool)...),
		Action: func(c *cli.Context) error {
			jobs := c.Int("jobs")
			if jobs < 1 {
				return cliutil.Usagef("bad -j %d: want at least 1", jobs)
			}
			if err := applyplan.CheckParallelWorkers(c.String("parallel-workers")); err != nil {
				return err
			}
			src, err := readAll(c)
			if err != nil {
				return err
			}
			plan, err := applyplan.New(tool, src)
			if err != nil {
				return err
			}
			if c.Bool("dry-run") {
				return plan.Print(c.App.Writer)
			}
			if plan.Serial && jobs > 1 {
				fmt.Fprintf(c.App.ErrWriter, "%s: note: the script has transaction control statements (BEGIN, COMMIT, ...): running it on one connection\n", tool)
				jobs = 1
			}
			ctx := c.Context
			url := dbconn.Resolve(c.String("target"), dbconn.Target)
			if err := plan.Configure(ctx, url, jobs, c.String("parallel-workers"), c.String("maintenance-work-mem"), c.App.ErrWriter); err != nil {
				return err
			}
			start := time.Now()
			plan.Log, plan.SlowAfter = c.App.ErrWriter, 10*time.Second
			plan.SkipExisting = c.Bool("skip-existing")
			if err := plan.Run(ctx, url, jobs); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "%s: applied %d statements in %s with %d connections\n", tool, len(plan.Steps), time.Since(start).Round(time.Millisecond), jobs)
			return nil
		},
	}
}
