package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

// Run verifies the selected tables, writes the report to report (and with EmitFix the repair
// records to fix), and returns the exit code; err is set for errors that stop the whole run.
func Run(ctx context.Context, cfg Config, report, fix, diag io.Writer) (int, error) {
	if cfg.StateSchema == "" {
		cfg.StateSchema = "pgferry"
	}
	if cfg.ChunkRows <= 0 {
		cfg.ChunkRows = 250000
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
	default:
		results, err = runHash(ctx, src, dst, pairs, cfg, diag)
	}
	if err != nil {
		return ExitError, asError(err)
	}
	if cfg.EmitFix {
		if err := emitFix(ctx, src, dst, cfg.StateSchema, results, fix); err != nil {
			return ExitError, asError(err)
		}
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

// runHash hashes every row of both sides, compares bucket sums and narrows mismatches to keys.
func runHash(ctx context.Context, src, dst *side, pairs []*pair, cfg Config, diag io.Writer) ([]*Result, error) {
	fn := cfg.HashFunc
	var err error
	if fn, err = chooseHash(ctx, src, dst, cfg.HashFunc); err != nil {
		return nil, err
	}
	if fn == hashClient {
		if err := chooseFormats(ctx, src, pairs); err != nil {
			return nil, err
		}
	}
	res, masks, err := scanAll(ctx, src, dst, pairs, fn, cfg.ChunkRows, cfg.Jobs)
	if err != nil {
		return nil, err
	}
	var out []*Result
	for _, p := range pairs {
		r := &Result{Table: p.Name, Mode: "hash", pair: p}
		out = append(out, r)
		if p.NoKey {
			// Still exit 3 (no key names a row), but say whether the contents hash the same.
			b := res[p]
			r.Status, r.Reason, r.Hash = StatusNotComparable, p.Reason, fn
			r.SourceRows, r.TargetRows = &b[0].rows, &b[1].rows
			if len(mismatched(b[0], b[1])) == 0 {
				r.Reason += "; compared as a whole (a multiset of rows) it is the same"
			} else {
				r.Reason += "; compared as a whole (a multiset of rows) it DIFFERS"
			}
			continue
		}
		if p.Reason != "" {
			r.Status, r.Reason = StatusNotComparable, p.Reason
			continue
		}
		r.Hash = fn
		b := res[p]
		r.SourceRows, r.TargetRows = &b[0].rows, &b[1].rows
		bad := mismatched(b[0], b[1])
		if len(bad) == 0 {
			r.Status = StatusSame
			continue
		}
		var keys [][]string
		var more bool
		if fn == hashClient {
			keys, more, err = narrowCopy(ctx, src, dst, p, masks[p], bad, cfg.MaxDiffs)
		} else {
			keys, more, err = narrow(ctx, src, dst, p, fn, masks[p], bad, cfg.MaxDiffs)
		}
		if err != nil {
			return nil, err
		}
		r.Truncated = more
		ds, err := classify(ctx, p, keys, src.inSnapshot, dst.inSnapshot)
		if err != nil {
			return nil, err
		}
		r.setDiffs(ds)
		if r.Status == StatusSame {
			// Cannot happen within one snapshot per side, short of a 64-bit hash collision: say so
			// rather than report a table whose bucket sums differ as the same.
			r.Status, r.Reason = StatusDiffer, fmt.Sprintf("%d buckets differ but no differing key was found (hash collision?)", len(bad))
		}
	}
	if cfg.Recheck > 0 && exitCode(out) == ExitDiffer {
		fmt.Fprintf(diag, "pgverify: differences found; re-checking them in %s\n", cfg.Recheck)
		select {
		case <-time.After(cfg.Recheck):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		for _, r := range out {
			if r.Status != StatusDiffer {
				continue
			}
			ds, err := classify(ctx, r.pair, diffKeys(r.Diffs), src.fresh, dst.fresh)
			if err != nil {
				return nil, err
			}
			r.Rechecked = true
			r.setDiffs(ds)
		}
	}
	return out, nil
}

func diffKeys(ds []Diff) [][]string {
	out := make([][]string, len(ds))
	for i, d := range ds {
		out[i] = d.vals
	}
	return out
}

var _ = pgx.ErrNoRows
