// Package copyin implements pgcopyin: it loads the framed copy stream into the target, one transaction per chunk.
package copyin

import (
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/applyplan"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/progress"
	"github.com/pgferry/pgferry/internal/retry"
	"github.com/pgferry/pgferry/internal/stream"
)

const description = `Reads the stream pgcopyout writes (stdin, or the directory form with -i DIR) and loads
every chunk with COPY ... FROM STDIN in its own target transaction, which also records the chunk
(and the snapshot it was read under) in the state schema's copy_chunks. A chunk commits only once
its chunk-end frame has arrived and COPY's row count matches; a damaged or cut stream rolls the
chunk back. A re-run skips recorded chunks, so a killed load resumes with no duplicates and no gaps.

Before loading anything it checks that every table and column of the stream exists on the target
(columns are matched by name; their order may differ) and refuses to load into a table that already
holds rows pgcopyin did not record, unless --truncate.

With --indexes FILE (the output of 'pgschema dump --section indexes') it also builds the indexes
and keys: a table's statements start as soon as its last chunk has committed, on --index-jobs
connections of their own, so the index builds of the big tables (copied first) overlap the copy
of the rest; statements on other tables wait for the end of the load. A failed statement stops
the statements not yet started (not the load), and pgcopyin exits 1 at the end. An index that
already exists (built by an earlier, killed run: a build commits whole or not at all) counts as
done. It pays when cores are spare; where the copy alone keeps every core busy it gains nothing.
A table whose chunks were read under several snapshots (--snapshot per-chunk, a resumed copy, a
renewed shared snapshot) is not yet a state the source had: its unique indexes and constraints
other than its key wait; pgcopyin names them and the command that builds them after the first
catch-up ('pgschema apply --skip-existing < FILE').

Examples:
   pgcopyout --source "$SRC" -j 8 | pv | pgcopyin --target "$DST" -j 8
   pgschema dump --source "$SRC" --section indexes > indexes.sql
   pgcopyout --source "$SRC" -j 8 | pgcopyin --target "$DST" -j 8 --indexes indexes.sql # data and indexes
   pgcopyout --source "$SRC" --target "$DST" -j 8 | pgcopyin --target "$DST"   # resume after a failure
   pgcopyin --target "$DST" -i /backup/copy -j 4                                # from pgcopyout -o DIR
   pgcopyin --target "$DST" --truncate < copy.stream                            # start the tables afresh`

// Config is everything a load needs.
type Config struct {
	Target      string
	Jobs        int    // target connections; 0 = the stream header's jobs
	InputDir    string // directory form instead of stdin
	Truncate    bool
	StateSchema string
	Progress    progress.Mode

	Indexes            string // index script run as tables finish loading (--indexes)
	IndexJobs          int    // its connections; 0 = Jobs
	ParallelWorkers    string // max_parallel_maintenance_workers: auto or a number
	MaintenanceWorkMem string

	NetTimeout  time.Duration // see dbconn.Options.NetTimeout: 0 = the process's --net-timeout, negative = none
	RetryBuffer int64         // bytes of a chunk kept to retry it after a lost connection (0 = none)
	Retry       *retry.Policy // nil = retry.Default
}

// App builds the pgcopyin command line.
func App() *cli.App {
	return &cli.App{
		Name:        "pgcopyin",
		Usage:       "load a pgcopyout stream into the target database, resumably",
		UsageText:   "pgcopyin --target URL [-j N] [-i DIR] [--truncate] [--indexes FILE [--index-jobs N]] < stream",
		Description: description,
		Flags: append([]cli.Flag{
			dbconn.Flag(dbconn.Target),
			dbconn.NetTimeoutFlag(),
			&cli.StringFlag{Name: "retry-buffer", Value: "16MB", Usage: "keep up to this much of each chunk's data in memory, so a lost target connection retries the chunk from it instead of failing the stream (memory: -j times this)", EnvVars: []string{"PGFERRY_RETRY_BUFFER"}},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "parallel target connections (at least the stream's jobs, so interleaved chunks never wait)", DefaultText: "the stream's jobs", EnvVars: []string{"PGFERRY_JOBS"}},
			&cli.StringFlag{Name: "input-dir", Aliases: []string{"i"}, Usage: "read the directory form written by pgcopyout -o DIR instead of stdin", EnvVars: []string{"PGFERRY_INPUT_DIR"}},
			&cli.BoolFlag{Name: "truncate", Usage: "empty the stream's tables on the target (and forget their copy state) before loading", EnvVars: []string{"PGFERRY_TRUNCATE"}},
			cliutil.StateSchemaFlag("pgferry state schema on the target"),
			&cli.StringFlag{Name: "indexes", Usage: "index script ('pgschema dump --section indexes') to run as tables finish loading: a loaded table's index builds overlap the copy of the others", EnvVars: []string{"PGFERRY_INDEXES"}},
			&cli.IntFlag{Name: "index-jobs", Usage: "connections for --indexes", DefaultText: "-j, else the stream's jobs", EnvVars: []string{"PGFERRY_INDEX_JOBS"}},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress on stderr: auto (a line on a terminal), plain, json or none", EnvVars: []string{"PGFERRY_PROGRESS"}},
		}, applyplan.BuildSettingsFlags("pgcopyin")...),
		Action: action,
	}
}

// Main runs pgcopyin with args and returns the exit code.
func Main(args []string) int {
	if os.Getenv("GOMEMLIMIT") == "" {
		// Memory is bounded by design (a few frames per chunk in flight); a soft limit keeps the
		// garbage collector from letting the heap drift towards twice that.
		debug.SetMemoryLimit(150 << 20)
	}
	return cliutil.RunApp(App(), args)
}

func action(c *cli.Context) error {
	if c.NArg() > 0 {
		return cliutil.Usagef("unexpected argument %q: pgcopyin reads the stream from stdin or -i DIR", c.Args().First())
	}
	r := cliutil.NewFlagReader(c)
	pm := cliutil.ReadFlag(r, "progress", progress.ParseMode)
	netTimeout := cliutil.ReadFlag(r, "net-timeout", dbconn.ParseNetTimeout)
	keep := cliutil.ReadFlag(r, "retry-buffer", cliutil.SizeAtLeast(0))
	if r.Err != nil {
		return r.Err
	}
	if c.Int("jobs") < 0 {
		return cliutil.Usagef("bad -j %d: want at least 1", c.Int("jobs"))
	}
	if c.Int("index-jobs") < 0 {
		return cliutil.Usagef("bad --index-jobs %d: want at least 1", c.Int("index-jobs"))
	}
	if c.String("indexes") == "" && (c.IsSet("index-jobs") || c.IsSet("parallel-workers") || c.IsSet("maintenance-work-mem")) {
		return cliutil.Usagef("--index-jobs, --parallel-workers and --maintenance-work-mem tune --indexes, which is not given")
	}
	cfg := Config{
		NetTimeout: netTimeout, RetryBuffer: keep,
		Target: dbconn.Resolve(c.String("target"), dbconn.Target), Jobs: c.Int("jobs"), InputDir: c.String("input-dir"),
		Truncate: c.Bool("truncate"), StateSchema: c.String("state-schema"), Progress: pm,
		Indexes: c.String("indexes"), IndexJobs: c.Int("index-jobs"), ParallelWorkers: c.String("parallel-workers"),
		MaintenanceWorkMem: c.String("maintenance-work-mem"),
	}
	var stdin io.Reader = os.Stdin
	if cfg.InputDir == "" && cliutil.IsTerminal(os.Stdin) {
		return cliutil.WithHint(cliutil.ExitUsage, errStdinTerminal, "pipe pgcopyout into pgcopyin, redirect a stream file, or use -i DIR")
	}
	if cfg.InputDir == "" {
		stream.GrowPipe(os.Stdin)
	}
	stream.LimitProcs(max(cfg.Jobs, 4))
	ctx := c.Context
	return Run(ctx, cfg, stdin, c.App.ErrWriter)
}
