package copyin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/progress"
	"github.com/pgferry/pgferry/internal/state"
	"github.com/pgferry/pgferry/internal/stream"
)

var errStdinTerminal = errors.New("refusing to read the stream from a terminal")

const appName = "pgferry-pgcopyin"

// Run loads the stream from stdin (or cfg.InputDir) into cfg.Target.
func Run(ctx context.Context, cfg Config, stdin io.Reader, stderr io.Writer) error {
	if cfg.StateSchema == "" {
		cfg.StateSchema = state.DefaultSchema
	}
	var (
		h   *stream.Header
		sr  *stream.Reader
		dir *stream.Dir
		err error
	)
	if cfg.InputDir != "" {
		dir, err = stream.OpenDir(cfg.InputDir)
		if err != nil {
			return cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("read stream directory: %w", err), "point -i at a directory written completely by pgcopyout -o")
		}
		h = dir.Header()
	} else {
		sr, err = stream.NewReader(stdin)
		if err != nil {
			return streamError(err)
		}
		h = sr.Header()
	}

	idx, err := prepareIndexes(ctx, cfg, h, stderr)
	if err != nil {
		return err
	}
	ctl, err := dbconn.Connect(ctx, cfg.Target, dbconn.Target, dbconn.Options{AppName: appName})
	if err != nil {
		return err
	}
	defer ctl.Close(context.Background())
	if err := refuseSource(ctx, ctl, h, cfg.Target, stderr); err != nil {
		return err
	}
	if err := lockLoad(ctx, ctl, cfg.StateSchema); err != nil {
		return err
	}
	if err := state.Ensure(ctx, ctl, cfg.StateSchema); err != nil {
		return err
	}
	targets, err := checkTables(ctx, ctl, h)
	if err != nil {
		return err
	}
	done, err := prepare(ctx, ctl, cfg, h, targets, stderr)
	if err != nil {
		return err
	}
	snaps, err := state.ChunkSnapshots(ctx, ctl, cfg.StateSchema)
	if err != nil {
		return err
	}

	l := newLoader(cfg, h, targets, done, snaps, idx, stderr)
	idx.run(ctx)
	l.prog.Start()
	if dir != nil {
		err = l.runDir(ctx, dir)
	} else {
		err = l.runStream(ctx, sr, stdin)
	}
	l.prog.Finish(err)
	l.closeConns()
	return idx.finish(err)
}

// streamError turns a stream decoding error into a failure with a hint.
func streamError(err error) error {
	hint := "the stream is damaged or incomplete; nothing of the damaged chunk was committed: re-run the pipeline (loaded chunks are kept, it resumes)"
	var se *stream.Error
	switch {
	case errors.As(err, &se) && se.Offset == 0 && errors.Is(err, stream.ErrTruncated):
		hint = "stdin was empty: pgcopyout wrote nothing (see its message above); pipe pgcopyout into pgcopyin"
	case errors.Is(err, stream.ErrBadMagic):
		hint = "pgcopyin reads the output of pgcopyout (not COPY text or a pg_dump file)"
	case errors.Is(err, stream.ErrVersion):
		hint = "use pgcopyout and pgcopyin of the same pgferry release"
	}
	return cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("read stream: %w", err), hint)
}

// lockLoad takes a session advisory lock so two pgcopyin runs never load into one target at once.
// It tries for a few seconds: the backend of a run that just ended (or was killed, and is being
// re-run as the operator was told) may still hold the lock while it exits.
func lockLoad(ctx context.Context, conn *pgx.Conn, schema string) error {
	var ok bool
	for try := 0; !ok && try < 25; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtext('pgferry-pgcopyin:' || $1))", schema).Scan(&ok); err != nil {
			return fmt.Errorf("take load lock: %w", err)
		}
	}
	if !ok {
		return cliutil.WithHint(cliutil.ExitFailure, errors.New("another pgcopyin is loading into this target (state schema "+schema+")"),
			"wait for it to finish or stop it; see pg_stat_activity where application_name = '"+appName+"'")
	}
	return nil
}

// prepare applies --truncate, stores each table's plan, and returns the chunks already loaded.
// It refuses a plan that differs from one with loaded chunks, a stream that skips chunks the
// target does not hold, and a non-empty table with no loaded chunks (without --truncate).
func prepare(ctx context.Context, conn *pgx.Conn, cfg Config, h *stream.Header, targets []*target, stderr io.Writer) (map[string]map[int]bool, error) {
	done := map[string]map[int]bool{}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	if cfg.Truncate {
		if err := truncateAll(ctx, tx, cfg, h, targets); err != nil {
			return nil, err
		}
	}
	for i, t := range h.Tables {
		d, err := prepareTable(ctx, tx, cfg, t, targets[i], stderr)
		if err != nil {
			return nil, err
		}
		done[t.Name] = d
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("store copy plan: %w", err)
	}
	var loaded, total int
	for i, t := range h.Tables {
		total += len(t.Chunks)
		loaded += len(done[h.Tables[i].Name])
	}
	if loaded > 0 {
		fmt.Fprintf(stderr, "pgcopyin: resuming: %d of %d chunks already loaded are skipped\n", loaded, total)
	}
	return done, nil
}

// truncateAll empties every target table and its load state for --truncate, refusing a stream that skips chunks.
func truncateAll(ctx context.Context, tx pgx.Tx, cfg Config, h *stream.Header, targets []*target) error {
	for _, t := range h.Tables {
		for _, c := range t.Chunks {
			if c.Skip {
				return cliutil.WithHint(cliutil.ExitFailure,
					fmt.Errorf("--truncate with a stream that skips chunks (table %s chunk %d): truncating would lose them", t.Name, c.ID),
					"re-run pgcopyout without --target to get every chunk, or drop --truncate to resume")
			}
		}
	}
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.table.String()
		if err := state.ClearTable(ctx, tx, cfg.StateSchema, t.name); err != nil {
			return err
		}
	}
	if len(names) > 0 {
		if _, err := tx.Exec(ctx, "TRUNCATE "+joinComma(names)); err != nil {
			return fmt.Errorf("truncate target tables: %w", err)
		}
	}
	return nil
}

// prepareTable checks and stores the plan of stream table t loading into tg, and returns its chunks already loaded.
func prepareTable(ctx context.Context, tx pgx.Tx, cfg Config, t stream.Table, tg *target, stderr io.Writer) (map[int]bool, error) {
	plan := make([]state.PlanChunk, len(t.Chunks))
	for j, c := range t.Chunks {
		plan[j] = state.PlanChunk{ID: c.ID, Kind: c.Kind, Lower: c.Lower, Upper: c.Upper}
	}
	if t.Restart && !cfg.Truncate {
		if err := restartTable(ctx, tx, cfg, t, tg, stderr); err != nil {
			return nil, err
		}
	}
	stored, err := state.Plan(ctx, tx, cfg.StateSchema, t.Name)
	if err != nil {
		return nil, err
	}
	d, err := state.DoneChunks(ctx, tx, cfg.StateSchema, t.Name)
	if err != nil {
		return nil, err
	}
	if !samePlan(stored, plan) {
		if len(d) > 0 {
			return nil, cliutil.WithHint(cliutil.ExitFailure,
				fmt.Errorf("table %s: the stream's chunk plan differs from the plan of the %d chunks already loaded", t.Name, len(d)),
				"run pgcopyout with --target pointing at this database so it reuses the stored plan, or load afresh with pgcopyin --truncate")
		}
		if err := state.ReplacePlan(ctx, tx, cfg.StateSchema, t.Name, plan); err != nil {
			return nil, err
		}
	}
	for _, c := range t.Chunks {
		if c.Skip && !d[c.ID] {
			return nil, cliutil.WithHint(cliutil.ExitFailure,
				fmt.Errorf("table %s chunk %d: the stream skips it as already loaded, but the target has no record of it", t.Name, c.ID),
				"re-run pgcopyout with --target pointing at this database (same --state-schema), or without --target")
		}
	}
	if len(d) == 0 && !cfg.Truncate {
		var nonEmpty bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM ONLY "+tg.table.String()+")").Scan(&nonEmpty); err != nil {
			return nil, fmt.Errorf("check table %s is empty: %w", t.Name, err)
		}
		if nonEmpty {
			return nil, cliutil.WithHint(cliutil.ExitFailure,
				fmt.Errorf("table %s on the target already holds rows that pgcopyin did not load", t.Name),
				"re-run with --truncate to empty the stream's tables first, or empty that table yourself")
		}
	}
	return d, nil
}

// restartTable empties a table pgcopyout marked for a restart, when pgcopyin loaded what it holds.
func restartTable(ctx context.Context, tx pgx.Tx, cfg Config, t stream.Table, tg *target, stderr io.Writer) error {
	// pgcopyout found this table partly loaded under another snapshot (ctid chunks):
	// empty it, but only when pgcopyin loaded what it holds.
	d, err := state.DoneChunks(ctx, tx, cfg.StateSchema, t.Name)
	if err != nil {
		return err
	}
	if len(d) > 0 {
		if _, err := tx.Exec(ctx, "TRUNCATE ONLY "+tg.table.String()); err != nil {
			return fmt.Errorf("empty table %s to load it again: %w", t.Name, err)
		}
		if err := state.ClearTable(ctx, tx, cfg.StateSchema, t.Name); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "pgcopyin: table %s was partly loaded by ctid ranges under another snapshot: emptied, loading it again whole\n", t.Name)
	}
	return nil
}

func samePlan(a []state.PlanChunk, b []state.PlanChunk) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[int]state.PlanChunk{}
	for _, c := range a {
		m[c.ID] = c
	}
	for _, c := range b {
		if o, ok := m[c.ID]; !ok || !o.Same(c) {
			return false
		}
	}
	return true
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// newProgress announces every table to the reporter.
func newProgress(cfg Config, h *stream.Header, stderr io.Writer) *progress.Reporter {
	p := progress.New(stderr, cfg.Progress, "pgcopyin")
	for _, t := range h.Tables {
		p.AddTable(t.Name, t.EstRows, t.EstBytes)
	}
	return p
}
