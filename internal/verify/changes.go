package verify

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/state"
)

// changePlan is how --mode changes checks one table: by the keys captured after its proof, or
// in full (full says why).
type changePlan struct {
	p     *pair
	proof catchup.Snapshot
	delta string   // delta table in the capture schema
	kcols []string // the delta table's key columns, in the order of p.Key
	full  string
}

// proofFacts is what the plan of every table is decided from.
type proofFacts struct {
	proofs  map[string]state.Proof
	capture map[string]capture.Captured
	horizon string
	cs      string // quoted capture schema
}

// runChanges verifies each table by the keys captured after its proof, and in full the tables
// without a usable proof; it adds row counts from the statistics and owned sequences to each.
func runChanges(ctx context.Context, src, dst *side, pairs []*pair, cfg Config, diag io.Writer) ([]*Result, error) {
	plans, err := planChanges(ctx, src, dst, pairs, cfg)
	if err != nil {
		return nil, err
	}
	var out []*Result
	var full []*pair
	why := map[*pair]string{}
	var keys int64
	for _, pl := range plans {
		if pl.full != "" {
			full, why[pl.p] = append(full, pl.p), pl.full
			continue
		}
		r, err := checkChanges(ctx, src, dst, pl, cfg.MaxDiffs)
		if err != nil {
			return nil, err
		}
		keys += *r.ChangedKeys
		out = append(out, r)
	}
	if cfg.Recheck > 0 && exitCode(out) == ExitDiffer {
		if err := recheck(ctx, src, dst, out, cfg.Recheck, diag); err != nil {
			return nil, err
		}
	}
	if len(full) > 0 {
		rs, err := runHash(ctx, src, dst, full, cfg, diag)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			r.Note = "full hash: " + why[r.pair]
		}
		out = append(out, rs...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	if err := addSanityChecks(ctx, src, dst, out); err != nil {
		return nil, err
	}
	fmt.Fprintln(diag, changesSummary(len(plans)-len(full), keys, full, why))
	return out, nil
}

// changesSummary is the one line that says which tables were verified how, and why.
func changesSummary(byChanges int, keys int64, full []*pair, why map[*pair]string) string {
	s := fmt.Sprintf("pgverify: changes mode: %d table(s) verified by the %d key(s) captured since their proof, %d by a full hash", byChanges, keys, len(full))
	if len(full) == 0 {
		return s
	}
	var rs []string
	for i, p := range full {
		if i == 5 {
			rs = append(rs, fmt.Sprintf("%d more", len(full)-i))
			break
		}
		rs = append(rs, p.Name+": "+why[p])
	}
	return s + " (" + strings.Join(rs, "; ") + ")"
}

// planChanges decides, table by table, whether its proof can be used.
func planChanges(ctx context.Context, src, dst *side, pairs []*pair, cfg Config) ([]*changePlan, error) {
	f := proofFacts{capture: map[string]capture.Captured{}, cs: ident.Quote(catchup.OrDefault(cfg.CaptureSchema))}
	var err error
	if f.proofs, err = state.ReadProofs(ctx, dst.exporter, cfg.StateSchema); err != nil {
		return nil, err
	}
	var exists bool
	if err := src.exporter.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", f.cs+".capture_tables").Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for the capture registry: %w", err)
	}
	if exists {
		if f.capture, err = capturedByName(ctx, src.exporter, cfg.CaptureSchema); err != nil {
			return nil, err
		}
		if _, f.horizon, err = catchup.ListTargets(ctx, src.exporter, cfg.CaptureSchema); err != nil {
			return nil, err
		}
	}
	var out []*changePlan
	for _, p := range pairs {
		pl := &changePlan{p: p}
		if p.Reason == "" {
			if pl.full, err = pl.settle(ctx, src, f, cfg.MaxProofAge); err != nil {
				return nil, err
			}
		} else {
			pl.full = p.Reason
		}
		out = append(out, pl)
	}
	return out, nil
}

// capturedByName reads the source's capture registry, by table name.
func capturedByName(ctx context.Context, conn *pgx.Conn, captureSchema string) (map[string]capture.Captured, error) {
	reg, err := capture.LoadRegistry(ctx, conn, catchup.OrDefault(captureSchema))
	if err != nil {
		return nil, err
	}
	out := make(map[string]capture.Captured, len(reg))
	for _, c := range reg {
		out[c.Table.Key()] = c
	}
	return out, nil
}

// settle returns why the table must be compared in full, or "" when its proof holds.
func (pl *changePlan) settle(ctx context.Context, src *side, f proofFacts, maxAge time.Duration) (string, error) {
	pr, ok := f.proofs[pl.p.Name]
	if !ok {
		return "no proof recorded by a live verify", nil
	}
	if maxAge > 0 && pr.AgeSeconds > maxAge.Seconds() {
		return fmt.Sprintf("the proof is %s old, over --max-proof-age %s", time.Duration(pr.AgeSeconds*float64(time.Second)).Round(time.Second), maxAge), nil
	}
	c, ok := f.capture[pl.p.Name]
	if !ok {
		return "not captured on the source", nil
	}
	var err error
	if pl.proof, err = catchup.ParseSnapshot(pr.Position); err != nil {
		return "unreadable proof position", nil
	}
	if !pl.proof.Visible(uint64(c.InstalledTxid)) {
		return "capture was installed again after the proof", nil
	}
	if f.horizon != "" {
		if h, err := catchup.ParseSnapshot(f.horizon); err != nil || !pl.proof.Covers(h) {
			return "the delta tables were pruned past the proof", nil
		}
	}
	pl.delta = f.cs + "." + ident.Quote(c.DeltaTable)
	cond := "txid >= $2 AND NOT txid_visible_in_snapshot(txid, $3::text::txid_snapshot)"
	var truncated bool
	if err := src.exporter.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+f.cs+".truncates WHERE coalesce(captured_table, table_name) = $1 AND "+cond+")",
		pl.p.Name, pl.proof.Xmin, pr.Position).Scan(&truncated); err != nil {
		return "", fmt.Errorf("read truncates of %s: %w", pl.p.Name, err)
	}
	if truncated {
		return "truncated after the proof", nil
	}
	if pl.p.NoKey || c.Keyless {
		return pl.settleKeyless(ctx, src, pr.Position)
	}
	return pl.matchKey(c.KeyColumns), nil
}

// settleKeyless: a table without a key is compared in full once a row of it changed after the
// proof (its changes are whole rows; a full compare costs one scan per side).
func (pl *changePlan) settleKeyless(ctx context.Context, src *side, pos string) (string, error) {
	var changed bool
	err := src.exporter.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+pl.delta+" WHERE txid >= $1 AND NOT txid_visible_in_snapshot(txid, $2::text::txid_snapshot))",
		pl.proof.Xmin, pos).Scan(&changed)
	if err != nil {
		return "", fmt.Errorf("read changes of %s: %w", pl.p.Name, err)
	}
	if changed {
		return "no key and changed after the proof", nil
	}
	return "", nil
}

// matchKey orders the delta table's key columns like the compared key, or says they differ.
func (pl *changePlan) matchKey(captured []string) string {
	have := map[string]bool{}
	for _, k := range captured {
		have[k] = true
	}
	if len(captured) != len(pl.p.Key) {
		return "captured by another key than the one compared"
	}
	for _, k := range pl.p.Key {
		if !have[k.Name] {
			return "captured by another key than the one compared"
		}
		pl.kcols = append(pl.kcols, k.Name)
	}
	return ""
}

// checkChanges compares, in both snapshots, the rows of the keys captured after the proof.
func checkChanges(ctx context.Context, src, dst *side, pl *changePlan, limit int) (*Result, error) {
	var n int64
	r := &Result{Table: pl.p.Name, Mode: "changes", pair: pl.p, Proof: pl.proof.String(), ChangedKeys: &n}
	if pl.kcols == nil { // no key, unchanged since the proof
		r.Status, r.Note = StatusSame, "no key; unchanged since the proof"
		return r, nil
	}
	keys, err := pl.capturedKeys(ctx, src.inSnapshot)
	if err != nil {
		return nil, err
	}
	n = int64(len(keys))
	ds, err := classify(ctx, pl.p, keys, src.inSnapshot, dst.inSnapshot)
	if err != nil {
		return nil, err
	}
	if len(ds) > limit {
		ds, r.Truncated = ds[:limit], true
	}
	r.setDiffs(ds)
	return r, nil
}

// capturedKeys reads, through read (a snapshot or a fresh transaction), the distinct keys the
// delta table holds changes of after the proof, as text in the order of kcols.
func (pl *changePlan) capturedKeys(ctx context.Context, read func(context.Context, func(pgx.Tx) error) error) ([][]string, error) {
	kexpr := make([]string, len(pl.kcols))
	for i, k := range pl.kcols {
		kexpr[i] = ident.Quote(k) + "::text"
	}
	q := fmt.Sprintf("SELECT DISTINCT ARRAY[%s] FROM %s WHERE txid >= $1 AND NOT txid_visible_in_snapshot(txid, $2::text::txid_snapshot)",
		strings.Join(kexpr, ", "), pl.delta)
	var keys [][]string
	err := read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, pl.proof.Xmin, pl.proof.String())
		if err != nil {
			return err
		}
		keys, err = pgx.CollectRows(rows, pgx.RowTo[[]string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read the keys of %s captured since %s: %w", pl.p.Name, pl.proof, err)
	}
	return keys, nil
}

// addSanityChecks adds to every compared table its row counts from the statistics (a failure
// only when wildly off) and its owned sequences (the target's must not be behind the source's).
func addSanityChecks(ctx context.Context, src, dst *side, rs []*Result) error {
	var est [2]map[uint32]int64
	var seqs [2]map[uint32][]ownedSeq
	for si, s := range []*side{src, dst} {
		var oids []uint32
		for _, r := range rs {
			if r.pair != nil && r.pair.Reason == "" {
				oids = append(oids, r.pair.table(si).OID)
			}
		}
		var err error
		if est[si], err = liveTuples(ctx, s.exporter, oids); err != nil {
			return fmt.Errorf("read statistics on %s: %w", s.role, err)
		}
		if seqs[si], err = listOwnedSeqs(ctx, s.exporter, oids); err != nil {
			return fmt.Errorf("read sequences on %s: %w", s.role, err)
		}
	}
	for _, r := range rs {
		if r.pair == nil || r.pair.Reason != "" {
			continue
		}
		a, b := est[0][r.pair.Src.OID], est[1][r.pair.Dst.OID]
		r.addCheck(statsCheck(a, b))
		for _, c := range seqChecks(seqs[0][r.pair.Src.OID], seqs[1][r.pair.Dst.OID]) {
			r.addCheck(c)
		}
	}
	return nil
}

// addCheck appends c; a failed check makes a same table differ.
func (r *Result) addCheck(c Check) {
	r.Checks = append(r.Checks, c)
	if !c.OK && r.Status == StatusSame {
		r.Status, r.Reason = StatusDiffer, "check failed: "+c.Name+" ("+c.Note+")"
	}
}

// statsCheck compares n_live_tup of both sides: statistics lag and drift, so only a gap of more
// than half the larger count and more than 10,000 rows fails.
func statsCheck(a, b int64) Check {
	c := Check{Name: "rows from statistics", Source: fmt.Sprint(a), Target: fmt.Sprint(b), OK: true, Note: "n_live_tup, not a proof"}
	if d := max(a-b, b-a); d > 10000 && d > max(a, b)/2 {
		c.OK, c.Note = false, "n_live_tup differs by more than half: the target is missing or holding many rows"
	}
	return c
}

// seqChecks compares each owned sequence's last issued value: the target's must not be behind.
func seqChecks(src, dst []ownedSeq) []Check {
	by := map[string]ownedSeq{}
	for _, s := range dst {
		by[s.col] = s
	}
	var out []Check
	for _, s := range src {
		t, ok := by[s.col]
		if !ok || s.issued == nil {
			continue
		}
		c := Check{Name: "sequence " + s.name, Source: fmt.Sprint(*s.issued), Target: "(never called)", OK: t.issued != nil && *t.issued >= *s.issued}
		if t.issued != nil {
			c.Target = fmt.Sprint(*t.issued)
		}
		if !c.OK {
			c.Note = "the target's sequence is behind the source's: run pgdelta sequences; if it was just run (the cutover), " +
				"a session the freeze did not end is still calling nextval on the source: end it (pg_stat_activity, pg_terminate_backend), then run it again"
		}
		out = append(out, c)
	}
	return out
}

// liveTuples returns n_live_tup by table, a partitioned table's summed over its partitions.
func liveTuples(ctx context.Context, q queryer, oids []uint32) (map[uint32]int64, error) {
	rows, err := q.Query(ctx, `WITH RECURSIVE t(root, rel) AS (
  SELECT r, r FROM unnest($1::oid[]) r
  UNION ALL SELECT t.root, i.inhrelid FROM t JOIN pg_inherits i ON i.inhparent = t.rel JOIN pg_class c ON c.oid = i.inhrelid AND c.relispartition)
SELECT t.root, coalesce(sum(s.n_live_tup), 0)::bigint FROM t LEFT JOIN pg_stat_all_tables s ON s.relid = t.rel GROUP BY t.root`, oids)
	if err != nil {
		return nil, err
	}
	out := map[uint32]int64{}
	var oid uint32
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&oid, &n}, func() error { out[oid] = n; return nil })
	return out, err
}
