package copyout

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/pgver"
	"github.com/pgferry/pgferry/internal/progress"
	"github.com/pgferry/pgferry/internal/retry"
	"github.com/pgferry/pgferry/internal/stream"
	"github.com/pgferry/pgferry/internal/workpool"
)

// Snapshot modes.
const (
	SnapshotShared   = "shared"    // one exported snapshot imported by every chunk
	SnapshotPerChunk = "per-chunk" // each key-range chunk takes its own snapshot
)

// Config is everything pgcopyout needs for one run.
type Config struct {
	Source        string
	Target        string // optional: skip the chunks it already holds
	Jobs          int
	Filter        catalog.Filter
	SplitSize     int64
	Codec         string
	Format        string // auto (default), text or binary
	SplitBy       string // "" (auto), key or ctid: see Planner.SplitBy
	OutDir        string // directory form instead of stdout
	SnapshotMode  string
	OneOff        bool
	CaptureSchema string
	StateSchema   string
	Progress      progress.Mode
	FrameSize     int  // uncompressed bytes per data frame (about)
	PlanOnly      bool // print the header (the plan) as JSON and copy nothing
	Retry         *retry.Policy
	NetTimeout    time.Duration // see dbconn.Options.NetTimeout: 0 = the process's --net-timeout, negative = none
	RetryBuffer   int64         // a chunk is held back until it ends or outgrows this (0 = none), so a lost connection before then retries it
}

// Run copies the selected tables of the source into the stream on stdout (or cfg.OutDir).
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	codec, err := checkConfig(&cfg, stdout)
	if err != nil {
		return err
	}

	conn, err := dbconn.Connect(ctx, cfg.Source, dbconn.Source, dbconn.Options{AppName: "pgferry-pgcopyout"})
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	srcID, err := identifySides(ctx, cfg, conn, stderr)
	if err != nil {
		return err
	}
	coord, err := beginSnapshot(ctx, conn)
	if err != nil {
		return err
	}
	defer coord.release(context.Background())

	var tables []*catalog.Table
	var plans []*TablePlan
	textOnly := map[string]bool{}
	err = inSnapshot(ctx, cfg.Source, coord.snapshotID, func(pc *pgx.Conn) error {
		var err error
		tables, plans, textOnly, err = planCopy(ctx, cfg, pc, coord.version, stderr)
		return err
	})
	if err != nil {
		return err
	}
	h := buildHeader(cfg, codec, coord, &srcID, plans, textOnly)
	if cfg.PlanOnly {
		h.Version = stream.Version
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(h)
	}

	out, err := openOutput(cfg, stdout, h)
	if err != nil {
		return err
	}

	prog := progress.New(stderr, cfg.Progress, "pgcopyout")
	jobs, left, sharedLeft := planJobs(cfg, plans, h, prog)
	pol := retry.Default
	if cfg.Retry != nil {
		pol = *cfg.Retry
	}
	shared := &sharedSnapshot{coord: coord, url: cfg.Source, oneOff: cfg.OneOff, schema: cfg.CaptureSchema, tables: tables,
		stderr: stderr, retry: pol, ctidSnap: map[string]string{}}
	defer shared.release(context.Background())
	cp := &copier{stderr: stderr, source: cfg.Source, shared: shared, codec: codec, out: out, prog: prog, frameSize: cfg.FrameSize, retry: pol, netTimeout: cfg.NetTimeout,
		hold: int(min(cfg.RetryBuffer, 1<<40))}
	cp.chunkDone = func(j *job) {
		if left[j.tp.Key()].Add(-1) == 0 {
			prog.TableDone(j.tp.Key())
		}
		if j.shared && sharedLeft.Add(-1) == 0 && cfg.SnapshotMode == SnapshotPerChunk {
			shared.release(ctx)
		}
	}
	if cfg.SnapshotMode == SnapshotPerChunk && sharedLeft.Load() == 0 {
		shared.release(ctx)
	}
	prog.Start()
	err = workpool.Run(ctx, cfg.Jobs, jobs, cp.worker) // the first failure stops the others
	prog.Finish(err)
	if err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("finish stream: %w", err)
	}
	return nil
}

// checkConfig validates cfg and fills in its defaults, returning the parsed codec.
func checkConfig(cfg *Config, stdout io.Writer) (stream.Codec, error) {
	if strings.EqualFold(strings.TrimSpace(cfg.Codec), "auto") {
		cfg.Codec = autoCodec(cfg.OutDir, stdout)
	}
	codec, err := stream.ParseCodec(cfg.Codec)
	if err != nil {
		return codec, cliutil.Usagef("%v", err)
	}
	if cfg.Jobs < 1 {
		return codec, cliutil.Usagef("bad --jobs %d: want at least 1", cfg.Jobs)
	}
	switch cfg.SnapshotMode {
	case "":
		cfg.SnapshotMode = SnapshotShared
	case SnapshotShared, SnapshotPerChunk:
	default:
		return codec, cliutil.Usagef("bad --snapshot %q: want shared or per-chunk", cfg.SnapshotMode)
	}
	if cfg.SnapshotMode == SnapshotPerChunk && cfg.OneOff {
		return codec, cliutil.WithHint(cliutil.ExitUsage, fmt.Errorf("--snapshot per-chunk cannot be combined with --one-off: chunks read under different snapshots are only consistent after catch-up"),
			"install capture (pgtrig install) for a per-chunk copy, or use --snapshot shared for a one-off copy")
	}
	switch cfg.Format {
	case "":
		cfg.Format = FormatAuto
	case FormatAuto, FormatText, FormatBinary:
	default:
		return codec, cliutil.Usagef("bad --format %q: want auto, text or binary", cfg.Format)
	}
	switch cfg.SplitBy {
	case "", "auto":
		cfg.SplitBy = ""
	case "key", "ctid":
	default:
		return codec, cliutil.Usagef("bad --split-by %q: want auto, key or ctid", cfg.SplitBy)
	}
	if cfg.FrameSize <= 0 {
		cfg.FrameSize = 1 << 20
	}
	if cfg.FrameSize > stream.MaxFrameSize {
		cfg.FrameSize = stream.MaxFrameSize
	}
	if cfg.OutDir == "" && !cfg.PlanOnly {
		if err := cliutil.RefuseTerminal(stdout, "the copy stream"); err != nil {
			return codec, err
		}
	}
	return codec, nil
}

// buildHeader describes the copy (snapshot, codec and every table's chunk plan) in a stream header.
func buildHeader(cfg Config, codec stream.Codec, coord *coordinator, srcID *dbconn.Identity, plans []*TablePlan, textOnly map[string]bool) *stream.Header {
	h := &stream.Header{
		ServerVersion: coord.serverVersion, Position: coord.position, SnapshotMode: cfg.SnapshotMode,
		Codec: codec.String(), Jobs: cfg.Jobs, CreatedAt: time.Now().UTC(), Source: srcID,
	}
	for _, tp := range plans {
		st := stream.Table{Name: tp.Key(), Columns: tp.ColumnNames(), Key: tp.KeyColumns, EstRows: tp.EstRows, EstBytes: tp.Bytes, Format: stream.FormatText, Restart: tp.Restart}
		if cfg.Format != FormatText && !textOnly[tp.Key()] {
			st.Format = stream.FormatBinary
		}
		for _, c := range tp.Chunks {
			st.Chunks = append(st.Chunks, stream.Chunk{ID: c.ID, Kind: c.Kind, Lower: c.Lower, Upper: c.Upper, Skip: c.Skip})
		}
		h.Tables = append(h.Tables, st)
	}
	return h
}

// openOutput starts the stream with header h, in cfg.OutDir or on stdout.
func openOutput(cfg Config, stdout io.Writer, h *stream.Header) (stream.FrameWriter, error) {
	if cfg.OutDir != "" {
		dw, err := stream.NewDirWriter(cfg.OutDir, h)
		if err != nil {
			return nil, fmt.Errorf("create output directory: %w", err)
		}
		return dw, nil
	}
	w, err := stream.NewWriter(stdout, h)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// planJobs lists the chunks to copy in order, announces their tables to prog, and counts the
// chunks left per table and under the shared snapshot.
func planJobs(cfg Config, plans []*TablePlan, h *stream.Header, prog *progress.Reporter) ([]*job, map[string]*atomic.Int64, *atomic.Int64) {
	// The work: every chunk not yet on the target, biggest first. In per-chunk mode the ctid
	// chunks still share the exported snapshot and go first, so it can be released early.
	var jobs []*job
	left := map[string]*atomic.Int64{}
	for ti, tp := range plans {
		n := int64(0)
		for i := range tp.Chunks {
			c := &tp.Chunks[i]
			if c.Skip {
				continue
			}
			n++
			jobs = append(jobs, &job{ti: ti, tp: tp, c: c, shared: cfg.SnapshotMode == SnapshotShared || c.Kind == KindCtid,
				binary: h.Tables[ti].Binary()})
		}
		if n > 0 {
			frac := float64(n) / float64(len(tp.Chunks))
			prog.AddTable(tp.Key(), int64(float64(tp.EstRows)*frac), int64(float64(tp.Bytes)*frac))
		}
		left[tp.Key()] = new(atomic.Int64)
		left[tp.Key()].Store(n)
	}
	sort.SliceStable(jobs, func(a, b int) bool {
		if jobs[a].shared != jobs[b].shared {
			return jobs[a].shared
		}
		return jobs[a].c.EstBytes > jobs[b].c.EstBytes
	})
	sharedLeft := new(atomic.Int64)
	for _, j := range jobs {
		if j.shared {
			sharedLeft.Add(1)
		}
	}
	return jobs, left, sharedLeft
}

// autoCodec picks --codec auto: no compression into a pipe, lz4 into a file or directory.
// A pipe usually feeds pgcopyin on the same machine, where compressing costs CPU (the copy's
// bottleneck next to the two servers) and saves nothing; a stream sent over the network through
// the pipe (ssh, nc) should ask for lz4 or zstd.
func autoCodec(outDir string, stdout io.Writer) string {
	if outDir == "" {
		if f, ok := stdout.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
				return "none"
			}
		}
	}
	return "lz4"
}

// planCopy selects the tables, checks capture (invariant 1), plans the chunks (reusing the
// target's plan when resuming) and finds the tables binary COPY cannot carry, all on conn,
// inside the copy's snapshot.
func planCopy(ctx context.Context, cfg Config, conn *pgx.Conn, v pgver.Version, stderr io.Writer) ([]*catalog.Table, []*TablePlan, map[string]bool, error) {
	tables, err := selectTables(ctx, conn, cfg.Filter, cfg.CaptureSchema, cfg.StateSchema)
	if err != nil {
		return nil, nil, nil, err
	}
	if !cfg.OneOff {
		if err := checkCapture(ctx, conn, cfg.CaptureSchema, tables); err != nil {
			return nil, nil, nil, err
		}
	}
	var ts *targetState
	if cfg.OutDir != "" && !cfg.PlanOnly {
		// resuming an interrupted dump: its plan and its chunk files, whatever the target holds
		// (pgcopyin -i skips the chunks the target has)
		if ts, err = dirState(cfg.OutDir, stderr); err != nil {
			return nil, nil, nil, err
		}
	}
	if ts == nil && cfg.Target != "" {
		if ts, err = readTargetState(ctx, cfg.Target, cfg.StateSchema); err != nil {
			return nil, nil, nil, err
		}
	}
	planner := Planner{SplitSize: cfg.SplitSize, Jobs: cfg.Jobs, NoTIDRangeScan: !v.TIDRangeScan(),
		SplitBy: cfg.SplitBy, CtidOK: cfg.SnapshotMode == SnapshotShared}
	plans := make([]*TablePlan, 0, len(tables))
	for _, t := range tables {
		var tp *TablePlan
		if ts != nil && len(ts.plans[t.Key()]) > 0 {
			tp = &TablePlan{Table: t} // the target's plan is reused as is
		} else if tp, err = planner.Plan(ctx, conn, t); err != nil {
			return nil, nil, nil, err
		}
		if ts != nil {
			restart, err := ts.apply(tp)
			if err != nil {
				return nil, nil, nil, err
			}
			if restart {
				if tp, err = planner.Plan(ctx, conn, t); err != nil {
					return nil, nil, nil, err
				}
				tp.Restart = true
				fmt.Fprintf(stderr, "pgcopyout: table %s was split by ctid ranges and is only partly on the target: it is copied again whole (pgcopyin empties it first)\n", t.Key())
			}
		}
		plans = append(plans, tp)
	}
	textOnly := map[string]bool{}
	if cfg.Format != FormatText {
		if textOnly, err = catalog.TextOnlyTables(ctx, conn, tables); err != nil {
			return nil, nil, nil, err
		}
		if cfg.Format == FormatBinary && len(textOnly) > 0 {
			var names []string
			for n := range textOnly {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, nil, nil, cliutil.WithHint(cliutil.ExitUsage,
				fmt.Errorf("--format binary: %d table(s) have columns binary COPY cannot carry between servers (composite, array, extension or reg* types): %s", len(names), strings.Join(names, ", ")),
				"use --format auto (those tables go as text) or exclude them")
		}
	}
	return tables, plans, textOnly, nil
}
