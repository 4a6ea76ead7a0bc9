package verify

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/progress"
)

// description is pgverify's help text.
const description = `Compares every selected table of the source with the same table on the target. Columns are
matched by name, both sides are read under pinned session settings, each side from one exported
snapshot read by -j workers, and both sides are scanned at the same time.

Modes:
  hash  (default) every row is hashed on the server; rows are grouped into buckets by a hash of
        their key and per-bucket sums are compared. Mismatched buckets are narrowed to keys:
        missing (on source, not target), extra (on target, not source) and changed (with the
        columns that differ). Independent of collation and physical row order.
  changes
        the cutover's check: each table by the keys captured after its proof (recorded on the
        target by an earlier hash verify that found it the same), plus row counts from the
        statistics and owned sequences. A table without a usable proof (none, older than
        --max-proof-age, truncated or capture reinstalled after it, delta pruned past it, no key
        and changed) is hashed in full; a line on stderr says which and why.
  count exact row counts on both sides.
  quick the checks people do by hand, labelled as such: estimated rows, exact counts, min/max of
        the key, and target sequences versus the key's maximum. Not a proof.

A hash or changes verify records, per table found the same, the position it proved equality at
(the meet of the source's snapshot and the target's applied position) in the target's state
schema (verify_proofs; --no-record: not).

Partitioned tables are verified at their root (reading the root covers all partitions, however
the target partitions them). The capture and state schemas are skipped.

A table without a primary key or unique index over NOT NULL columns is compared as a multiset
of rows: differing rows are named by their values, "missing 2 x (...)", "extra 1 x (...)".

Exit status: 0 identical, 1 differences (or, as for every pgferry tool, -n/-t patterns that match
no table: stderr says "no table matches"), 2 error, 3 not comparable (the table's columns differ,
or it exists on one side only: the report says which). When several apply, 2 wins over 1, 1 over 3.

Examples:
  pgverify --source "$SRC" --target "$DST" -j 4
  pgverify --json -t 'public.orders*' --recheck 10
  pgverify --emit-fix | pgdelta apply --target "$DST"     # repair what differs`

// Main runs pgverify with args and returns its exit code.
func Main(args []string) int {
	code := -1
	app := &cli.App{
		Name:        "pgverify",
		Usage:       "prove source and target hold the same rows, table by table, and name the rows that differ",
		UsageText:   "pgverify --source URL --target URL [--mode quick|count|hash|changes] [--max-proof-age D] [-j N] [filters] [--max-diffs N] [--recheck N] [--emit-fix] [--json]",
		Description: description,
		Flags:       flags(),
		Action: func(c *cli.Context) error {
			cfg, err := configFromCLI(c)
			if err != nil {
				return err
			}
			ctx := c.Context
			report := io.Writer(os.Stdout)
			var fix io.Writer
			if cfg.EmitFix {
				report, fix = os.Stderr, os.Stdout
			}
			cfg.Terminal = cliutil.IsTerminal(report)
			code, err = Run(ctx, cfg, report, fix, os.Stderr)
			return err
		},
	}
	dbconn.AddNetTimeoutFlag(app)
	rc := cliutil.RunApp(app, args)
	if rc == 0 && code > 0 {
		return code
	}
	return rc
}

// flags are pgverify's flags.
func flags() []cli.Flag {
	return append([]cli.Flag{
		dbconn.Flag(dbconn.Source),
		dbconn.Flag(dbconn.Target),
		&cli.StringFlag{Name: "mode", Value: "hash", Usage: "quick, count, hash or changes", EnvVars: []string{"PGFERRY_VERIFY_MODE"}},
		&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 4, Usage: "workers per side", EnvVars: []string{"PGFERRY_JOBS"}},
		&cli.IntFlag{Name: "max-diffs", Value: 1000, Usage: "name at most N differing keys per table (also caps --emit-fix)", EnvVars: []string{"PGFERRY_MAX_DIFFS"}},
		&cli.IntFlag{Name: "recheck", Usage: "re-check differing keys after N seconds; keys that converged are not reported (for a live sync)", EnvVars: []string{"PGFERRY_RECHECK"}},
		&cli.BoolFlag{Name: "emit-fix", Usage: "write the differing keys as pgdelta records on stdout (the report goes to stderr)", EnvVars: []string{"PGFERRY_EMIT_FIX"}},
		&cli.BoolFlag{Name: "json", Usage: "one JSON object per table instead of a table", EnvVars: []string{"PGFERRY_JSON"}},
		&cli.DurationFlag{Name: "max-proof-age", Usage: "--mode changes: a proof older than this counts as none (e.g. 6h; 0: any age)", EnvVars: []string{"PGFERRY_MAX_PROOF_AGE"}},
		&cli.BoolFlag{Name: "no-record", Usage: "do not record proofs on the target", EnvVars: []string{"PGFERRY_VERIFY_NO_RECORD"}},
		&cli.BoolFlag{Name: "no-large-objects", Usage: "do not compare large objects (compared, as table pg_largeobject, whenever either side has any)", EnvVars: []string{"PGFERRY_VERIFY_NO_LARGE_OBJECTS"}},
		cliutil.CaptureSchemaFlag("capture schema on the source (skipped)"),
		cliutil.StateSchemaFlag("state schema on the target (skipped)"),
		&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress of the hash scan on stderr: auto (a line on a terminal, else plain), plain (timestamped lines), json or none", EnvVars: []string{"PGFERRY_PROGRESS"}},
		&cli.Int64Flag{Name: "chunk-rows", Value: 250000, Hidden: true, Usage: "rows per key-range chunk of a big table", EnvVars: []string{"PGFERRY_VERIFY_CHUNK_ROWS"}},
		&cli.StringFlag{Name: "hash", Value: "auto", Usage: "row hash: auto (hashtextextended when both servers agree, else md5), hashtextextended or md5 (rows hashed by the servers, which send only bucket sums), or client (rows read with COPY, binary where both servers give the same bytes, and hashed by pgverify: about two thirds of the servers' CPU, at the cost of pgverify's own CPU and the rows crossing the network)", EnvVars: []string{"PGFERRY_VERIFY_HASH"}},
	}, catalog.FilterFlags()...)
}

// configFromCLI builds the run's Config from the flags and checks it.
func configFromCLI(c *cli.Context) (Config, error) {
	if c.NArg() > 0 {
		return Config{}, cliutil.Usagef("unexpected argument %q", c.Args().First())
	}
	f, err := catalog.FilterFromCLI(c)
	if err != nil {
		return Config{}, cliutil.WithCode(cliutil.ExitUsage, err)
	}
	pm, err := progress.ParseMode(c.String("progress"))
	if err != nil {
		return Config{}, cliutil.WithCode(cliutil.ExitUsage, err)
	}
	cfg := Config{
		SourceURL: dbconn.Resolve(c.String("source"), dbconn.Source),
		TargetURL: dbconn.Resolve(c.String("target"), dbconn.Target),
		Mode:      c.String("mode"), Jobs: c.Int("jobs"), Filter: f,
		SkipSchemas: []string{c.String("capture-schema"), c.String("state-schema")}, StateSchema: c.String("state-schema"),
		CaptureSchema: c.String("capture-schema"), MaxProofAge: c.Duration("max-proof-age"), NoRecord: c.Bool("no-record"),
		MaxDiffs: c.Int("max-diffs"), Recheck: time.Duration(c.Int("recheck")) * time.Second,
		EmitFix: c.Bool("emit-fix"), JSON: c.Bool("json"), HashFunc: c.String("hash"), ChunkRows: c.Int64("chunk-rows"),
		Progress:       pm,
		NoLargeObjects: c.Bool("no-large-objects"),
	}
	switch cfg.Mode {
	case "quick", "count", "hash", "changes":
	default:
		return Config{}, cliutil.WithHint(cliutil.ExitUsage, fmt.Errorf("unknown mode %q", cfg.Mode), "use --mode quick, count, hash or changes")
	}
	switch cfg.HashFunc {
	case "auto", "client", "hashtextextended", "md5":
	default:
		return Config{}, cliutil.WithHint(cliutil.ExitUsage, fmt.Errorf("unknown hash %q", cfg.HashFunc), "use --hash auto, client, hashtextextended or md5")
	}
	if cfg.Jobs < 1 || cfg.MaxDiffs < 1 || c.Int("recheck") < 0 {
		return Config{}, cliutil.Usagef("-j and --max-diffs must be at least 1, --recheck at least 0")
	}
	if cfg.EmitFix && cfg.Mode != "hash" {
		return Config{}, cliutil.WithHint(cliutil.ExitUsage, fmt.Errorf("--emit-fix needs --mode hash"), "drop --mode or use --mode hash")
	}
	return cfg, nil
}
