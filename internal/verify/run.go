package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/ident"
)

// Run verifies the selected tables, writes the report to report (and with EmitFix the repair
// records to fix), and returns the exit code; err is set for errors that stop the whole run.
func Run(ctx context.Context, cfg Config, report, fix, diag io.Writer) (int, error) {
	if cfg.StateSchema == "" {
		cfg.StateSchema = ident.DefaultSchema
	}
	if cfg.ChunkRows <= 0 {
		cfg.ChunkRows = 250000
	}
	recording := (cfg.Mode == "hash" || cfg.Mode == "changes") && !cfg.NoRecord
	var hold *pruneHold
	if recording {
		hold = holdPruning(ctx, cfg, diag) // before the snapshots: see holdPruning
		defer hold.close()
	}
	src, err := openSide(ctx, cfg.SourceURL, dbconn.Source, cfg.Jobs)
	if err != nil {
		return ExitError, asError(err)
	}
	defer src.close()
	dst, err := openSide(ctx, cfg.TargetURL, dbconn.Target, cfg.Jobs)
	if err != nil {
		return ExitError, asError(err)
	}
	defer dst.close()
	if err := dbconn.CheckDistinct(ctx, src.exporter, dst.exporter, cfg.SourceURL, cfg.TargetURL); err != nil {
		return ExitError, asError(err) // a database compared with itself proves nothing
	}
	pairs, err := listPairs(ctx, src.exporter, dst.exporter, cfg)
	if err != nil {
		return ExitError, asError(err)
	}
	if len(pairs) == 0 {
		return ExitError, cliutil.WithHint(ExitError, errors.New("no tables selected on either side"), "check --schema/--table filters and the connection URLs")
	}
	var results []*Result
	switch cfg.Mode {
	case "count":
		results, err = runCount(ctx, src, dst, pairs, cfg.Jobs)
	case "quick":
		results, err = runQuick(ctx, src, dst, pairs, cfg.Jobs)
	case "changes":
		results, err = runChanges(ctx, src, dst, pairs, cfg, diag)
	default:
		results, err = runHash(ctx, src, dst, pairs, cfg, diag)
	}
	if err != nil {
		return ExitError, asError(err)
	}
	if recording {
		pos, err := proofPosition(ctx, src, dst, cfg.StateSchema)
		if err != nil {
			return ExitError, asError(err)
		}
		recordProofs(ctx, cfg, src, pos, results, diag)
		hold.moveToProofs(ctx, diag)
	}
	if cfg.EmitFix {
		if err := emitFix(ctx, src, dst, cfg.StateSchema, results, fix); err != nil {
			return ExitError, asError(err)
		}
	}
	if lo, err := largeObjects(ctx, cfg); err != nil { // after proofs and fixes: it is no table
		return ExitError, asError(err)
	} else if lo != nil {
		results = append(results, lo)
	}
	if err := writeReport(report, results, cfg); err != nil {
		return ExitError, asError(fmt.Errorf("write report: %w", err))
	}
	return exitCode(results), nil
}

// asError makes err exit with status 2 unless it already carries a code.
func asError(err error) error {
	var ee *cliutil.ExitError
	if errors.As(err, &ee) || errors.Is(err, context.Canceled) {
		return err
	}
	return cliutil.WithCode(ExitError, err)
}

// runHash hashes every row of both sides, compares bucket sums and narrows mismatches to keys
// (or, without a key, to rows).
func runHash(ctx context.Context, src, dst *side, pairs []*pair, cfg Config, diag io.Writer) ([]*Result, error) {
	fn, err := chooseHash(ctx, src, dst, cfg.HashFunc)
	if err != nil {
		return nil, err
	}
	if fn == hashClient {
		if err := chooseFormats(ctx, src, pairs); err != nil {
			return nil, err
		}
	}
	prog := newProgress(cfg, diag, pairs)
	res, masks, err := scanAll(ctx, src, dst, pairs, fn, cfg.ChunkRows, cfg.Jobs, prog)
	prog.finish(err)
	if err != nil {
		return nil, err
	}
	var out []*Result
	for _, p := range pairs {
		r, err := judge(ctx, src, dst, p, fn, res[p], masks[p], cfg.MaxDiffs)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if cfg.Recheck > 0 && exitCode(out) == ExitDiffer {
		if err := recheck(ctx, src, dst, out, cfg.Recheck, diag); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// judge compares one table's buckets and narrows the mismatched ones to what differs.
func judge(ctx context.Context, src, dst *side, p *pair, fn string, b [2]*buckets, mask int64, limit int) (*Result, error) {
	r := &Result{Table: p.Name, Mode: "hash", pair: p}
	if p.Reason != "" {
		r.Status, r.Reason = StatusNotComparable, p.Reason
		return r, nil
	}
	r.Hash = fn
	r.SourceRows, r.TargetRows = &b[0].rows, &b[1].rows
	bad := mismatched(b[0], b[1])
	if len(bad) == 0 {
		r.Status = StatusSame
		return r, nil
	}
	var ds []Diff
	var err error
	if p.NoKey {
		ds, r.Truncated, err = narrowKeyless(ctx, src, dst, p, fn, mask, bad, limit)
	} else {
		ds, r.Truncated, err = narrowKeyed(ctx, src, dst, p, fn, mask, bad, limit)
	}
	if err != nil {
		return nil, err
	}
	r.setDiffs(ds)
	if r.Status == StatusSame {
		// Cannot happen within one snapshot per side, short of a 64-bit hash collision: say so
		// rather than report a table whose bucket sums differ as the same.
		r.Status, r.Reason = StatusDiffer, fmt.Sprintf("%d buckets differ but no differing row was found (hash collision?)", len(bad))
	}
	return r, nil
}

// narrowKeyed finds the keys of the mismatched buckets that differ and reads their rows.
func narrowKeyed(ctx context.Context, src, dst *side, p *pair, fn string, mask int64, bad []int64, limit int) ([]Diff, bool, error) {
	var keys [][]string
	var more bool
	var err error
	if fn == hashClient {
		keys, more, err = narrowCopy(ctx, src, dst, p, mask, bad, limit)
	} else {
		keys, more, err = narrow(ctx, src, dst, p, fn, mask, bad, limit)
	}
	if err != nil {
		return nil, false, err
	}
	ds, err := classify(ctx, p, keys, src.inSnapshot, dst.inSnapshot)
	return ds, more, err
}

// recheck waits, then reads the differing keys and rows again outside the snapshots and drops
// those that converged.
func recheck(ctx context.Context, src, dst *side, out []*Result, wait time.Duration, diag io.Writer) error {
	fmt.Fprintf(diag, "pgverify: differences found; re-checking them in %s\n", wait)
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, r := range out {
		if r.Status != StatusDiffer || len(r.Diffs) == 0 {
			continue
		}
		var ds []Diff
		var err error
		if r.pair.NoKey {
			ds, err = recountKeyless(ctx, r.pair, r.Diffs, src.fresh, dst.fresh)
		} else {
			ds, err = classify(ctx, r.pair, diffKeys(r.Diffs), src.fresh, dst.fresh)
		}
		if err != nil {
			return err
		}
		r.Rechecked = true
		r.setDiffs(ds)
	}
	return nil
}

func diffKeys(ds []Diff) [][]string {
	out := make([][]string, len(ds))
	for i, d := range ds {
		out[i] = d.vals
	}
	return out
}
