package verify

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/state"
)

// proofPosition is the position a verify of this run proves equality at: the meet of the
// source's read snapshot S and the target's applied position A as the target's read snapshot
// saw it. Only pgdelta writes the target, and after A it writes only keys captured after A; a
// key not captured after the meet was the same at S and is not written after the target's read,
// so it stays equal. "" when the target records no position (a one-off copy): nothing to prove at.
func proofPosition(ctx context.Context, src, dst *side, stateSchema string) (string, error) {
	tp, err := catchup.TargetPosition(ctx, dst.exporter, stateSchema)
	if err != nil || tp.Position == "" {
		return "", err
	}
	a, err := catchup.ParseSnapshot(tp.Position)
	if err != nil {
		return "", fmt.Errorf("target position: %w", err)
	}
	s, err := catchup.ParseSnapshot(src.position)
	if err != nil {
		return "", fmt.Errorf("source snapshot: %w", err)
	}
	return catchup.Meet(s, a).String(), nil
}

// recordProofs writes a proof at pos for every table found the same, or different only in keys
// with changes captured after pos (not applied yet: a cutover's changes mode compares exactly
// those keys), and removes the proof of every other table found different. A failure is
// reported on diag: it does not change the verdict.
func recordProofs(ctx context.Context, cfg Config, src *side, pos string, results []*Result, diag io.Writer) {
	if pos == "" {
		return
	}
	pending, err := pendingOnly(ctx, src, cfg, pos, results)
	if err != nil {
		fmt.Fprintf(diag, "pgverify: warning: could not read the changes captured since %s (%v); tables found different get no proof\n", pos, err)
	}
	var same, differ []string
	for _, r := range results {
		switch {
		case r.Status == StatusSame || pending[r]:
			same = append(same, r.Table)
		case r.Status == StatusDiffer:
			differ = append(differ, r.Table)
		}
	}
	c, err := dbconn.Connect(ctx, cfg.TargetURL, dbconn.Target, dbconn.Options{AppName: "pgferry-pgverify"})
	if err == nil {
		defer c.Close(context.Background())
		err = state.WriteProofs(ctx, c, cfg.StateSchema, pos, same, differ)
	}
	if err != nil {
		fmt.Fprintf(diag, "pgverify: warning: could not record the proofs on the target (%v); a cutover will verify in full\n", err)
		return
	}
	note := ""
	if len(pending) > 0 {
		note = fmt.Sprintf(" (%d of them differ only in keys with captured changes not applied yet, which a cutover compares)", len(pending))
	}
	fmt.Fprintf(diag, "pgverify: recorded proofs at %s for %d table(s) on the target%s\n", pos, len(same), note)
}

// pendingOnly returns the results found different whose every differing key has a change
// captured after pos. It needs the whole list of differing keys (not truncated) of a table with
// a key, captured by that key; the captured keys are read fresh, a superset of those the
// snapshot saw.
func pendingOnly(ctx context.Context, src *side, cfg Config, pos string, results []*Result) (map[*Result]bool, error) {
	out := map[*Result]bool{}
	var cands []*Result
	for _, r := range results {
		if r.Status == StatusDiffer && !r.Truncated && len(r.Diffs) > 0 && r.pair != nil && !r.pair.NoKey {
			cands = append(cands, r)
		}
	}
	if len(cands) == 0 {
		return out, nil
	}
	proof, err := catchup.ParseSnapshot(pos)
	if err != nil {
		return out, err
	}
	cs := catchup.OrDefault(cfg.CaptureSchema)
	byName, err := capturedByName(ctx, src.exporter, cs)
	if err != nil {
		return out, err
	}
	for _, r := range cands {
		c, ok := byName[r.Table]
		if !ok || c.Keyless {
			continue
		}
		pl := &changePlan{p: r.pair, proof: proof, delta: ident.Quote(cs) + "." + ident.Quote(c.DeltaTable)}
		if pl.matchKey(c.KeyColumns) != "" {
			continue
		}
		keys, err := pl.capturedKeys(ctx, src.fresh)
		if err != nil {
			return out, err
		}
		if coversDiffs(keys, r.Diffs) {
			out[r] = true
		}
	}
	return out, nil
}

// coversDiffs reports whether every diff's key is among keys (text values in key order).
func coversDiffs(keys [][]string, ds []Diff) bool {
	have := make(map[string]bool, len(keys))
	for _, k := range keys {
		have[strings.Join(k, "\x00")] = true
	}
	for _, d := range ds {
		if !have[strings.Join(d.vals, "\x00")] {
			return false
		}
	}
	return true
}

// pruneHold keeps the source's delta rows the proofs need: pruning deletes only what every
// registered target holds, so a registration "pgverify:<target id>" at the oldest live proof
// stops it there (docs/verify.md, "Changes since the proof").
type pruneHold struct {
	src, dst  *pgx.Conn
	reg       catchup.Registration
	cs, state string
}

// holdPruning registers the hold at the target's current position, before the snapshots are
// taken, so every change after the proof this run records stays in the delta tables. It returns
// nil (after a warning where it matters) when there is nothing to hold or it cannot be held.
func holdPruning(ctx context.Context, cfg Config, diag io.Writer) *pruneHold {
	h := &pruneHold{cs: cfg.CaptureSchema, state: cfg.StateSchema}
	var err error
	if h.src, err = dbconn.Connect(ctx, cfg.SourceURL, dbconn.Source, dbconn.Options{AppName: "pgferry-pgverify"}); err != nil {
		return nil
	}
	if h.dst, err = dbconn.Connect(ctx, cfg.TargetURL, dbconn.Target, dbconn.Options{AppName: "pgferry-pgverify"}); err != nil {
		h.close()
		return nil
	}
	var captured bool
	var tp catchup.Position
	err = dbconn.CheckDistinct(ctx, h.src, h.dst, cfg.SourceURL, cfg.TargetURL)
	if err == nil {
		tp, err = catchup.TargetPosition(ctx, h.dst, cfg.StateSchema)
	}
	if err == nil && tp.Position != "" {
		err = h.src.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ident.Quote(catchup.OrDefault(h.cs))+".capture_tables").Scan(&captured)
	}
	if err != nil || !captured {
		h.close()
		return nil // a one-off copy, or no capture: no proof to keep usable
	}
	id, err := state.TargetID(ctx, h.dst, cfg.StateSchema)
	if err == nil {
		h.reg = catchup.Registration{ID: "pgverify:" + id, Where: "pgverify proofs of " + catchup.TargetWhere(cfg.TargetURL, cfg.StateSchema), Position: tp.Position}
		err = catchup.RegisterTarget(ctx, h.src, h.cs, h.reg)
	}
	if err != nil {
		fmt.Fprintf(diag, "pgverify: warning: cannot hold pruning of the source's delta tables (%v): the proofs may be unusable at the cutover\n", err)
		h.close()
		return nil
	}
	return h
}

// moveToProofs moves the hold to the meet of the proofs still usable (each holds every change
// pruned so far), or removes it when none is.
func (h *pruneHold) moveToProofs(ctx context.Context, diag io.Writer) {
	if h == nil {
		return
	}
	proofs, err := state.ReadProofs(ctx, h.dst, h.state)
	var horizon string
	if err == nil {
		_, horizon, err = catchup.ListTargets(ctx, h.src, h.cs)
	}
	var ss []catchup.Snapshot
	for _, p := range proofs {
		if s, perr := catchup.ParseSnapshot(p.Position); perr == nil && catchup.Holds(p.Position, horizon) == nil {
			ss = append(ss, s)
		}
	}
	if err == nil && len(ss) == 0 {
		_, err = catchup.ForgetTarget(ctx, h.src, h.cs, h.reg.ID)
	} else if err == nil {
		h.reg.Position = catchup.Meet(ss...).String()
		err = catchup.RegisterTarget(ctx, h.src, h.cs, h.reg)
	}
	if err != nil {
		fmt.Fprintf(diag, "pgverify: warning: cannot move the hold on pruning to the proofs: %v\n", err)
	}
}

func (h *pruneHold) close() {
	if h == nil {
		return
	}
	for _, c := range []*pgx.Conn{h.src, h.dst} {
		if c != nil {
			c.Close(context.Background())
		}
	}
}
