package verify

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

// forBoth runs fn for every pair on both sides at once, jobs workers per side.
func forBoth(ctx context.Context, src, dst *side, pairs []*pair, jobs int, fn func(ctx context.Context, s *side, si int, p *pair) error) error {
	return perSide(ctx, src, dst, [2][]*pair{pairs, pairs}, jobs, fn)
}

// countable lists the pairs present on both sides; the others get a not-comparable result.
func countable(pairs []*pair) []*pair {
	var out []*pair
	for _, p := range pairs {
		if p.Src != nil && p.Dst != nil {
			out = append(out, p)
		}
	}
	return out
}

// readBoth reads one value of each pair present on both sides, on each side in its snapshot;
// what names the reading in its errors ("count public.t on source: ...").
func readBoth[T any](ctx context.Context, src, dst *side, pairs []*pair, jobs int, what string,
	read func(ctx context.Context, tx pgx.Tx, p *pair, si int) (T, error)) (map[*pair]*[2]T, error) {
	ps := countable(pairs)
	vals := make(map[*pair]*[2]T, len(ps))
	for _, p := range ps {
		vals[p] = &[2]T{}
	}
	err := forBoth(ctx, src, dst, ps, jobs, func(ctx context.Context, s *side, si int, p *pair) error {
		return s.inSnapshot(ctx, func(tx pgx.Tx) error {
			v, err := read(ctx, tx, p, si)
			if err != nil {
				return fmt.Errorf("%s %s on %s: %w", what, p.Name, s.role, err)
			}
			vals[p][si] = v
			return nil
		})
	})
	return vals, err
}

// runCount compares exact row counts, each side in its snapshot.
func runCount(ctx context.Context, src, dst *side, pairs []*pair, jobs int) ([]*Result, error) {
	counts, err := readBoth(ctx, src, dst, pairs, jobs, "count", func(ctx context.Context, tx pgx.Tx, p *pair, _ int) (n int64, err error) {
		err = tx.QueryRow(ctx, "SELECT count(*) FROM "+p.from()).Scan(&n)
		return n, err
	})
	if err != nil {
		return nil, err
	}
	return resultsOf(pairs, "count", counts, func(r *Result, _ *pair, c *[2]int64) {
		r.SourceRows, r.TargetRows = &c[0], &c[1]
		r.Status = StatusSame
		if c[0] != c[1] {
			r.Status = StatusDiffer
			r.Reason = "row counts differ"
		}
	}), nil
}

// resultsOf makes one result of mode per pair: not comparable where vals has none (the table is
// missing on a side), else what fill makes of the pair's two values.
func resultsOf[T any](pairs []*pair, mode string, vals map[*pair]*[2]T, fill func(r *Result, p *pair, v *[2]T)) []*Result {
	var out []*Result
	for _, p := range pairs {
		r := &Result{Table: p.Name, Mode: mode, pair: p}
		if v, ok := vals[p]; ok {
			fill(r, p, v)
		} else {
			r.Status, r.Reason = StatusNotComparable, p.Reason
		}
		out = append(out, r)
	}
	return out
}

// quickFacts are the hand checks of one table on one side.
type quickFacts struct {
	est      int64
	count    int64
	min, max *string
	seqs     map[string]seqFact // by column name
}

type seqFact struct {
	name   string
	issued *int64 // highest value handed out, nil when never called
	colMax *string
}

// readQuick gathers the quick-mode facts of p on one side.
func readQuick(ctx context.Context, tx pgx.Tx, p *pair, si int) (quickFacts, error) {
	t := p.table(si)
	f := quickFacts{est: t.EstRows, seqs: map[string]seqFact{}}
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+p.from()).Scan(&f.count); err != nil {
		return f, err
	}
	if len(t.KeyColumns) > 0 {
		// Qualified, so ORDER BY sorts by the column's own type: unqualified, it would bind to
		// the text output column of the same name (and find 999 the max of 1..2001).
		k := "t." + ident.Quote(t.KeyColumns[0])
		for _, dir := range []struct {
			ord string
			dst **string
		}{{"ASC", &f.min}, {"DESC", &f.max}} {
			err := tx.QueryRow(ctx, fmt.Sprintf("SELECT %s::text FROM %s ORDER BY %s %s LIMIT 1", k, p.fromAs("t"), k, dir.ord)).Scan(dir.dst)
			if err != nil && err != pgx.ErrNoRows {
				return f, err
			}
		}
	}
	seqs, err := listOwnedSeqs(ctx, tx, []uint32{t.OID})
	if err != nil {
		return f, err
	}
	for _, o := range seqs[t.OID] {
		sf := seqFact{name: o.name, issued: o.issued}
		if err := tx.QueryRow(ctx, fmt.Sprintf("SELECT max(%s)::text FROM %s", ident.Quote(o.col), p.from())).Scan(&sf.colMax); err != nil {
			return f, err
		}
		f.seqs[o.col] = sf
	}
	return f, nil
}

// runQuick runs the checks people do by hand. They are labelled: none of them proves the rows are the same.
func runQuick(ctx context.Context, src, dst *side, pairs []*pair, jobs int) ([]*Result, error) {
	facts, err := readBoth(ctx, src, dst, pairs, jobs, "quick checks of", readQuick)
	if err != nil {
		return nil, err
	}
	return resultsOf(pairs, "quick", facts, quickResult), nil
}

// quickResult fills in the checks of one table from its facts on both sides.
func quickResult(r *Result, p *pair, fs *[2]quickFacts) {
	str := func(p *string) string {
		if p == nil {
			return "(none)"
		}
		return *p
	}
	a, b := fs[0], fs[1]
	r.SourceRows, r.TargetRows = &a.count, &b.count
	r.Checks = append(r.Checks,
		Check{Name: "estimated rows", Source: strconv.FormatInt(a.est, 10), Target: strconv.FormatInt(b.est, 10), OK: true, Note: "pg_class.reltuples, informational only"},
		Check{Name: "exact count", Source: strconv.FormatInt(a.count, 10), Target: strconv.FormatInt(b.count, 10), OK: a.count == b.count})
	if len(p.Src.KeyColumns) > 0 {
		note := "first key column " + p.Src.KeyColumns[0]
		r.Checks = append(r.Checks,
			Check{Name: "min of key", Source: str(a.min), Target: str(b.min), OK: str(a.min) == str(b.min), Note: note + "; order of text keys depends on collation"},
			Check{Name: "max of key", Source: str(a.max), Target: str(b.max), OK: str(a.max) == str(b.max), Note: note + "; order of text keys depends on collation"})
	}
	for col, t := range b.seqs {
		c := Check{Name: "sequence " + t.name + " vs max(" + col + ")", OK: true}
		if s, ok := a.seqs[col]; ok && s.issued != nil {
			c.Source = strconv.FormatInt(*s.issued, 10)
		}
		c.Target = "(never called)"
		if t.issued != nil {
			c.Target = strconv.FormatInt(*t.issued, 10)
		}
		if t.colMax != nil {
			m, err := strconv.ParseInt(*t.colMax, 10, 64)
			if err == nil && (t.issued == nil || *t.issued < m) {
				c.OK = false
				c.Note = fmt.Sprintf("target sequence is behind max(%s) = %d on the target: nextval would collide (run pgdelta sequences)", col, m)
			}
		}
		r.Checks = append(r.Checks, c)
	}
	r.Status = StatusSame
	for _, c := range r.Checks {
		if !c.OK {
			r.Status = StatusDiffer
			r.Reason = "quick check failed: " + c.Name
			break
		}
	}
}

// ownedSeq is a sequence owned by a column, with its last issued value (nil: never called).
type ownedSeq struct {
	col, name string
	issued    *int64
}

// seqQueryer is what listOwnedSeqs needs: a *pgx.Conn or a pgx.Tx.
type seqQueryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// listOwnedSeqs returns, by table, the sequences owned by its columns (serial, identity).
func listOwnedSeqs(ctx context.Context, q seqQueryer, oids []uint32) (map[uint32][]ownedSeq, error) {
	rows, err := q.Query(ctx, `SELECT d.refobjid, a.attname, format('%I.%I', n.nspname, c.relname)
		FROM pg_depend d JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'S' JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
		WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY($1::oid[]) AND d.deptype IN ('a', 'i')
		ORDER BY 1, 2`, oids)
	if err != nil {
		return nil, err
	}
	type owned struct {
		rel uint32
		ownedSeq
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (owned, error) {
		var o owned
		return o, r.Scan(&o.rel, &o.col, &o.name)
	})
	if err != nil {
		return nil, err
	}
	out := map[uint32][]ownedSeq{}
	for _, o := range list {
		if err := q.QueryRow(ctx, "SELECT CASE WHEN is_called THEN last_value END FROM "+o.name).Scan(&o.issued); err != nil {
			return nil, err
		}
		out[o.rel] = append(out[o.rel], o.ownedSeq)
	}
	return out, nil
}
