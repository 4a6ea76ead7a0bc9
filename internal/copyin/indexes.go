package copyin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pgferry/pgferry/internal/applyplan"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/stream"
)

// indexBuild runs an index script (--indexes) alongside the load: the statements on a table
// start once its last chunk has committed, so the big tables' index builds overlap the copy of
// the rest; statements on tables the stream does not hold, and those whose tables are unknown,
// wait for the end of the load.
type indexBuild struct {
	path   string
	url    string
	jobs   int
	plan   *applyplan.Plan
	gate   *applyplan.Gate
	stderr io.Writer
	start  time.Time

	cancel context.CancelCauseFunc
	done   chan struct{}
	err    error
	ended  time.Time
}

// prepareIndexes reads and plans the script before anything is loaded, so a bad script or bad
// settings fail first; it returns nil when there is no script.
func prepareIndexes(ctx context.Context, cfg Config, h *stream.Header, stderr io.Writer) (*indexBuild, error) {
	if cfg.Indexes == "" {
		return nil, nil
	}
	src, err := os.ReadFile(cfg.Indexes)
	if err != nil {
		return nil, cliutil.WithHint(cliutil.ExitUsage, fmt.Errorf("read --indexes: %w", err),
			"give a file written by 'pgschema dump --section indexes'")
	}
	plan, err := applyplan.New("pgcopyin", src)
	if err != nil {
		return nil, fmt.Errorf("--indexes %s: %w", cfg.Indexes, err)
	}
	plan.Log, plan.SlowAfter = stderr, 10*time.Second
	// A re-run finds the indexes a killed run built (each build commits whole or not at all).
	plan.SkipExisting = true
	keys := map[string][]string{}
	for _, t := range h.Tables {
		keys[t.Name] = t.Key
	}
	plan.MarkUnique(func(table string, cols []string) bool {
		k, ok := keys[table]
		return !ok || len(k) > 0 && slices.Equal(k, cols)
	})
	jobs := cfg.indexJobs(h)
	if err := plan.Configure(ctx, cfg.Target, jobs, cfg.ParallelWorkers, cfg.MaintenanceWorkMem, stderr); err != nil {
		return nil, err
	}
	return &indexBuild{path: cfg.Indexes, url: cfg.Target, jobs: jobs, plan: plan, gate: applyplan.NewGate(), stderr: stderr}, nil
}

// indexJobs is the number of index connections: --index-jobs, else -j, else the stream's jobs.
func (c Config) indexJobs(h *stream.Header) int {
	switch {
	case c.IndexJobs > 0:
		return c.IndexJobs
	case c.Jobs > 0:
		return c.Jobs
	}
	return max(h.Jobs, 1)
}

// run starts the statements in the background; a failure is reported at once and stops further
// statements, but not the load.
func (b *indexBuild) run(ctx context.Context) {
	if b == nil {
		return
	}
	ctx, b.cancel = context.WithCancelCause(ctx)
	b.done = make(chan struct{})
	b.start = time.Now()
	go func() {
		defer close(b.done)
		b.err = b.plan.RunGated(ctx, b.url, b.jobs, b.gate)
		b.ended = time.Now()
		if b.err != nil && ctx.Err() == nil {
			fmt.Fprintf(b.stderr, "pgcopyin: an index statement failed; the load goes on, pgcopyin will exit 1 at its end:\n  %v\n", b.err)
		}
	}()
}

// loaded opens a table whose every chunk is on the target; mixed: they were read under several
// snapshots, so its unique indexes other than its key wait for the first catch-up (MarkUnique).
func (b *indexBuild) loaded(table string, mixed bool) {
	if b == nil {
		return
	}
	if mixed {
		b.gate.Mix(table)
	}
	b.gate.Open(table)
}

// heldBack says which statements waited for the first catch-up and how to run them then.
func (b *indexBuild) heldBack() {
	if len(b.plan.Held) == 0 {
		return
	}
	var tables []string
	for _, s := range b.plan.Held {
		for _, t := range s.Tables {
			if !slices.Contains(tables, t) {
				tables = append(tables, t)
			}
		}
	}
	fmt.Fprintf(b.stderr, "pgcopyin: held back %d unique index statements of %s on %s: their rows were copied under several snapshots, "+
		"which is not yet a state the source had; after the first catch-up ('pgdelta sync --until-caught-up') build them with "+
		"'pgschema apply --target TARGET --skip-existing < %s'\n", len(b.plan.Held), b.path, strings.Join(tables, ", "), b.path)
}

// finish waits for the statements once the load has ended: after a failed load it stops them
// (a build in progress rolls back) and returns loadErr; otherwise it lets the rest run.
func (b *indexBuild) finish(loadErr error) error {
	if b == nil {
		return loadErr
	}
	if loadErr != nil {
		b.cancel(loadErr)
		<-b.done
		return loadErr
	}
	select {
	case <-b.done:
	default:
		fmt.Fprintf(b.stderr, "pgcopyin: rows loaded; waiting for the index statements of %s\n", b.path)
	}
	b.gate.OpenAll()
	<-b.done
	if b.err != nil {
		var se *applyplan.StepError
		if errors.As(b.err, &se) {
			return cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("--indexes %s: %w", b.path, se),
				"every row is loaded; fix the cause, then re-run the load (pgcopyout --target ... | pgcopyin ... skips every loaded chunk; the indexes already built are kept) or apply the script with 'pgschema apply --skip-existing'")
		}
		return b.err
	}
	fmt.Fprintf(b.stderr, "pgcopyin: %d statements of %s applied, the last %s after the load began\n",
		len(b.plan.Steps)-len(b.plan.Held), b.path, b.ended.Sub(b.start).Round(100*time.Millisecond))
	b.heldBack()
	return nil
}
