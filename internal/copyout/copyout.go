// Package copyout implements pgcopyout: a parallel, consistent snapshot copy of a source database into a framed stream.
package copyout

import (
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/progress"
	"github.com/pgferry/pgferry/internal/stream"
)

const description = `Reads every selected table of the source under ONE exported snapshot (pg_export_snapshot),
with -j workers that each import it in their own short transaction per chunk, so no table lock
outlives its chunk. Tables bigger than --split-size are cut into chunks of about even row counts
(key ranges from pg_stats or a sample, else ctid ranges), biggest first. The output is the framed
copy stream for pgcopyin; its header records the snapshot's position for pgdelta's catch-up.

Unless --one-off, every copied table must already be captured (pgtrig install) before the
snapshot is taken; pgcopyout checks this inside the snapshot and refuses otherwise. Before each
chunk it checks the table's capture still holds (not re-created, same columns, capture triggers
enabled), else stops with exit 3 naming the table and the repair (docs/runbook.md).

The header names the source database (system identifier, database oid), so pgcopyin refuses to
load the stream back into it; with --target, pgcopyout refuses that itself.

Examples:
   pgcopyout --source "$SRC" -j 8 | pv | pgcopyin --target "$DST" -j 8
   pgcopyout --source "$SRC" -j 8 --target "$DST" | pgcopyin --target "$DST" -j 8   # resume
   pgcopyout --source "$SRC" -j 4 --one-off -o /backup/copy --codec zstd:3
   pgcopyout --source "$SRC" --plan -t 'public.orders'                              # show the chunks`

// App builds the pgcopyout command line.
func App() *cli.App {
	flags := []cli.Flag{
		dbconn.Flag(dbconn.Source),
		dbconn.NetTimeoutFlag(),
		&cli.StringFlag{Name: "retry-buffer", Value: "16MB", Usage: "hold each chunk's data in memory until the chunk ends or outgrows this, so a lost source connection before then retries the chunk instead of failing the stream (memory: -j times this)", EnvVars: []string{"PGFERRY_RETRY_BUFFER"}},
		&cli.StringFlag{Name: "target", Usage: "target database: skip the chunks it already holds (resume after a failed load); also refused when it is the source, and registered on the source before the snapshot so other targets' pruning keeps the changes its catch-up needs", EnvVars: []string{"PGFERRY_TARGET"}},
		&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 4, Usage: "parallel source connections (chunks read at once)", EnvVars: []string{"PGFERRY_JOBS"}},
		&cli.StringFlag{Name: "split-size", Value: "256MB", Usage: "split tables bigger than this (on disk) into chunks", EnvVars: []string{"PGFERRY_SPLIT_SIZE"}},
		&cli.StringFlag{Name: "split-by", Value: "auto", Usage: "how a keyed table is split: key (key ranges, resumable chunk by chunk), ctid (block ranges, read sequentially; --snapshot shared only, and a partly loaded table restarts whole), or auto (ctid where the key is not stored in about its order, so key ranges would read the heap at random)", EnvVars: []string{"PGFERRY_SPLIT_BY"}},
		&cli.StringFlag{Name: "codec", Value: "auto", Usage: "frame compression: lz4, zstd[:level], gzip[:level], none, or auto: none into a pipe (pgcopyin on this machine: compressing would only cost CPU), lz4 into a file or -o directory; pass lz4 or zstd when the pipe crosses a network (ssh, nc)", EnvVars: []string{"PGFERRY_CODEC"}},
		&cli.StringFlag{Name: "format", Value: "auto", Usage: "COPY format: auto (binary for tables whose column types all have a server-independent binary form: built-in types except reg*, enums, domains over them; text for the rest), text, or binary (refuses tables that need text)", EnvVars: []string{"PGFERRY_FORMAT"}},
		&cli.StringFlag{Name: "output-dir", Aliases: []string{"o"}, Usage: "write the directory form (one file per chunk plus header.json) instead of stdout", EnvVars: []string{"PGFERRY_OUTPUT_DIR"}},
		&cli.StringFlag{Name: "snapshot", Value: "shared", Usage: "shared: one snapshot for the whole copy; per-chunk: each key-range chunk takes its own (needs capture; does not hold back vacuum for the whole copy)", EnvVars: []string{"PGFERRY_SNAPSHOT"}},
		&cli.BoolFlag{Name: "one-off", Usage: "a copy with no catch-up: do not require capture to be installed", EnvVars: []string{"PGFERRY_ONE_OFF"}},
		cliutil.CaptureSchemaFlag("capture schema on the source (not copied)"),
		cliutil.StateSchemaFlag("pgferry state schema on the target (not copied from the source either)"),
		&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress on stderr: auto (a line on a terminal), plain, json or none", EnvVars: []string{"PGFERRY_PROGRESS"}},
		&cli.BoolFlag{Name: "plan", Usage: "print the stream header (tables and chunks) as JSON on stdout and copy nothing", EnvVars: []string{"PGFERRY_PLAN"}},
		&cli.StringFlag{Name: "frame-size", Value: "1MB", Usage: "uncompressed bytes per data frame", EnvVars: []string{"PGFERRY_FRAME_SIZE"}, Hidden: true},
	}
	flags = append(flags, catalog.FilterFlags()...)
	return &cli.App{
		Name:        "pgcopyout",
		Usage:       "copy a live PostgreSQL database, consistently and in parallel, into a stream for pgcopyin",
		UsageText:   "pgcopyout --source URL [-j N] [filters] [options] > stream",
		Description: description,
		Flags:       flags,
		Action:      action,
	}
}

// Main runs pgcopyout with args and returns the exit code.
func Main(args []string) int { return cliutil.RunApp(App(), args) }

func action(c *cli.Context) error {
	if c.NArg() > 0 {
		return cliutil.Usagef("unexpected argument %q: pgcopyout takes only flags", c.Args().First())
	}
	f, err := catalog.FilterFromCLI(c)
	if err != nil {
		return cliutil.WithCode(cliutil.ExitUsage, err)
	}
	r := cliutil.NewFlagReader(c)
	split := cliutil.ReadFlag(r, "split-size", cliutil.ParseSize)
	frame := cliutil.ReadFlag(r, "frame-size", cliutil.SizeAtLeast(1))
	pm := cliutil.ReadFlag(r, "progress", progress.ParseMode)
	netTimeout := cliutil.ReadFlag(r, "net-timeout", dbconn.ParseNetTimeout)
	hold := cliutil.ReadFlag(r, "retry-buffer", cliutil.SizeAtLeast(0))
	if r.Err != nil {
		return r.Err
	}
	cfg := Config{
		Source: dbconn.Resolve(c.String("source"), dbconn.Source), Target: c.String("target"),
		Jobs: c.Int("jobs"), Filter: f, SplitSize: split, Codec: c.String("codec"), Format: c.String("format"), SplitBy: c.String("split-by"), OutDir: c.String("output-dir"),
		SnapshotMode: c.String("snapshot"), OneOff: c.Bool("one-off"),
		CaptureSchema: c.String("capture-schema"), StateSchema: c.String("state-schema"),
		Progress: pm, FrameSize: int(frame), PlanOnly: c.Bool("plan"), NetTimeout: netTimeout, RetryBuffer: hold,
	}
	if f, ok := c.App.Writer.(*os.File); ok && cfg.OutDir == "" {
		stream.GrowPipe(f)
		if codec := strings.ToLower(strings.TrimSpace(cfg.Codec)); codec == "none" || codec == "auto" && autoCodec("", f) == "none" {
			stream.LimitProcs(cfg.Jobs) // compressing would need every CPU; moving bytes does not
		}
	}
	ctx := c.Context
	return Run(ctx, cfg, c.App.Writer, c.App.ErrWriter)
}
