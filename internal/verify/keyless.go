package verify

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

// A table without a key is compared as a multiset of rows. Its buckets are by row hash (so a
// row and its copies share a bucket); mismatched buckets are read again as the count of rows per
// row hash on each side, with the place (tableoid, ctid) of one copy, and a hash held a different
// number of times is a row missing or extra that many times. Those rows are then read by TID for
// their values and their compared text, which finds them on both sides from then on (re-check,
// repair).

// keylessRow is what is known of one distinct row of a keyless table.
type keylessRow struct {
	rt  string    // compared text (hashText): the same on both sides for equal rows
	raw []*string // values as text, in column order (nil = NULL)
}

// rowLoc is where one side holds a copy of a row within its snapshot: the partition (or table)
// and the ctid, which stay put while the snapshot is held.
type rowLoc struct {
	rel uint32
	tid string
}

// bucketBitmap is a bytea whose bit k (get_bit's numbering) is set for each bucket k.
func bucketBitmap(mask int64, bks []int64) []byte {
	bm := make([]byte, mask/8+1)
	for _, b := range bks {
		bm[b/8] |= 1 << (b % 8)
	}
	return bm
}

// sideCounts is one side's count of rows per row hash in the mismatched buckets, and where one
// copy of each is.
type sideCounts struct {
	n   map[uint64]int64
	loc map[uint64]rowLoc
}

// narrowKeyless returns the rows of a keyless table whose counts differ between the sides, at
// most limit of them (more reports whether there were more), ordered by their compared text.
func narrowKeyless(ctx context.Context, src, dst *side, p *pair, fn string, mask int64, bks []int64, limit int) (ds []Diff, more bool, err error) {
	var counts [2]sideCounts
	err = bothSides(ctx, src, dst, func(ctx context.Context, i int, s *side) error {
		var err error
		counts[i], err = hashCounts(ctx, s, p, fn, mask, bks)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("narrow %s: %w", p.Name, err)
	}
	hs, delta := countDiffs(counts[0].n, counts[1].n)
	if len(hs) > limit {
		hs, more = hs[:limit], true
	}
	var want [2][]uint64 // each row is read from the side that holds more of it
	for _, h := range hs {
		if delta[h] > 0 {
			want[0] = append(want[0], h)
		} else {
			want[1] = append(want[1], h)
		}
	}
	var got [2]map[uint64]keylessRow
	err = bothSides(ctx, src, dst, func(ctx context.Context, i int, s *side) error {
		var err error
		got[i], err = rowsByHash(ctx, s, p, want[i], counts[i].loc)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("read differing rows of %s: %w", p.Name, err)
	}
	for _, h := range hs {
		kind, n, row := "missing", delta[h], got[0][h]
		if n < 0 {
			kind, n, row = "extra", -n, got[1][h]
		}
		if row.raw == nil {
			return nil, false, fmt.Errorf("read differing rows of %s: a counted row is no longer where it was (was the table rewritten by VACUUM FULL or CLUSTER?); run pgverify again", p.Name)
		}
		ds = append(ds, keylessDiff(p, kind, n, row))
	}
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].rt < ds[j].rt })
	return ds, more, nil
}

// countDiffs lists the row hashes counted differently by the sides, in order, with source count
// minus target count.
func countDiffs(a, b map[uint64]int64) ([]uint64, map[uint64]int64) {
	delta := map[uint64]int64{}
	for h, n := range a {
		if d := n - b[h]; d != 0 {
			delta[h] = d
		}
	}
	for h, n := range b {
		if _, ok := a[h]; !ok {
			delta[h] = -n
		}
	}
	hs := make([]uint64, 0, len(delta))
	for h := range delta {
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i] < hs[j] })
	return hs, delta
}

func keylessDiff(p *pair, kind string, n int64, row keylessRow) Diff {
	d := Diff{Kind: kind, Count: n, Row: map[string]*string{}, rt: row.rt, raw: row.raw}
	for i, c := range p.Cols {
		d.Row[c.Name] = row.raw[i]
	}
	return d
}

// hashCounts counts one side's rows per row hash, in the buckets bks only.
func hashCounts(ctx context.Context, s *side, p *pair, fn string, mask int64, bks []int64) (sideCounts, error) {
	out := sideCounts{n: map[uint64]int64{}, loc: map[uint64]rowLoc{}}
	bm := bucketBitmap(mask, bks)
	if fn == hashClient {
		q := copySelect(p, p.Binary, "true", []string{"tableoid::oid::text", "ctid::text"})
		err := s.inSnapshot(ctx, func(tx pgx.Tx) error {
			clear(out.n)
			clear(out.loc)
			return copyRows(ctx, tx, p, q, 2, func(rh uint64, ex [][]byte) error {
				if b := rh & uint64(mask); bm[b/8]&(1<<(b%8)) != 0 {
					if out.n[rh]++; out.n[rh] == 1 {
						rel, err := strconv.ParseUint(string(ex[0]), 10, 32)
						out.loc[rh] = rowLoc{uint32(rel), string(ex[1])}
						return err
					}
				}
				return nil
			})
		})
		return out, err
	}
	// One copy's place comes with each count: the rows are then read by TID, not found again.
	q := fmt.Sprintf(`SELECT h, count(*), min(o::text || ' ' || c::text) FROM (SELECT %s AS h, tableoid AS o, ctid AS c FROM %s OFFSET 0) s
		WHERE get_bit($1::bytea, (h & %d)::int) = 1 GROUP BY h`, hashExpr(p, fn), p.from(), mask)
	err := s.inSnapshot(ctx, func(tx pgx.Tx) error {
		clear(out.n)
		clear(out.loc)
		if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '64MB'; "+noParallel); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, q, bm)
		if err != nil {
			return err
		}
		var h, n int64
		var loc string
		_, err = pgx.ForEachRow(rows, []any{&h, &n, &loc}, func() error {
			rel, tid, _ := strings.Cut(loc, " ")
			r, err := strconv.ParseUint(rel, 10, 32)
			out.n[uint64(h)], out.loc[uint64(h)] = n, rowLoc{uint32(r), tid}
			return err
		})
		return err
	})
	return out, err
}

// copyRows reads rows of p with the COPY statement q (copySelect with nExtra extra expressions),
// hashed as the client hash does, and calls onRow with each row's hash and extra values.
func copyRows(ctx context.Context, tx pgx.Tx, p *pair, q string, nExtra int, onRow func(rh uint64, ex [][]byte) error) error {
	rs := &rowScanner{binary: p.Binary, nh: len(p.Cols), nExtra: nExtra, onRow: func(_, rh uint64, ex [][]byte) error {
		return onRow(rh, ex)
	}}
	if _, err := tx.Conn().PgConn().CopyTo(ctx, rs, q); err != nil {
		return err
	}
	return rs.finish()
}

// rowExprs are the compared text and the array of values of a row, columns qualified by alias.
func rowExprs(p *pair, alias string) (rt, raw string) {
	vals := make([]string, len(p.Cols))
	for i, c := range p.Cols {
		vals[i] = alias + "." + ident.Quote(c.Name) + "::text"
	}
	return hashText(p.Cols, alias), "ARRAY[" + strings.Join(vals, ", ") + "]::text[]"
}

// rowsByHash reads, on one side, one row for each of the row hashes hs, at the place where
// counting saw one (seen).
func rowsByHash(ctx context.Context, s *side, p *pair, hs []uint64, seen map[uint64]rowLoc) (map[uint64]keylessRow, error) {
	out := map[uint64]keylessRow{}
	if len(hs) == 0 {
		return out, nil
	}
	err := s.inSnapshot(ctx, func(tx pgx.Tx) error {
		clear(out)
		byLoc, err := rowsAt(ctx, tx, p, hs, seen)
		if err != nil {
			return err
		}
		for _, h := range hs {
			if r, ok := byLoc[seen[h]]; ok {
				out[h] = r
			}
		}
		return nil
	})
	return out, err
}

// rowsAt reads the rows where seen places the hashes hs (a TID scan).
func rowsAt(ctx context.Context, tx pgx.Tx, p *pair, hs []uint64, seen map[uint64]rowLoc) (map[rowLoc]keylessRow, error) {
	var tids []string
	var rels []uint32
	for _, h := range hs {
		tids = append(tids, seen[h].tid)
		rels = append(rels, seen[h].rel)
	}
	rt, raw := rowExprs(p, "t")
	q := fmt.Sprintf("SELECT t.tableoid::oid, t.ctid::text, %s, %s FROM %s WHERE t.ctid = ANY($1::text[]::tid[]) AND t.tableoid = ANY($2::oid[])",
		rt, raw, p.fromAs("t"))
	rows, err := tx.Query(ctx, q, tids, rels)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[rowLoc]keylessRow{}
	for rows.Next() {
		var l rowLoc
		var r keylessRow
		if err := rows.Scan(&l.rel, &l.tid, &r.rt, &r.raw); err != nil {
			return nil, err
		}
		out[l] = r
	}
	return out, rows.Err()
}

// countRows counts, in tx, the rows whose compared text is each of rts.
func countRows(ctx context.Context, tx pgx.Tx, p *pair, rts []string) ([]int64, error) {
	rt, _ := rowExprs(p, "t")
	q := fmt.Sprintf(`SELECT u.i, count(*) FROM %s JOIN unnest($1::text[]) WITH ORDINALITY AS u(v, i) ON %s = u.v GROUP BY u.i`,
		p.fromAs("t"), rt)
	out := make([]int64, len(rts))
	if _, err := tx.Exec(ctx, noParallel); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, q, rts)
	if err != nil {
		return nil, err
	}
	var i, n int64
	_, err = pgx.ForEachRow(rows, []any{&i, &n}, func() error {
		out[i-1] = n
		return nil
	})
	return out, err
}

// recountKeyless counts the differing rows of a keyless table again on both sides (through run:
// in the snapshot or fresh) and returns the rows that still differ.
func recountKeyless(ctx context.Context, p *pair, ds []Diff, runSrc, runDst txRunner) ([]Diff, error) {
	rts := make([]string, len(ds))
	for i, d := range ds {
		rts[i] = d.rt
	}
	got, err := inBoth(ctx, runSrc, runDst, func(ctx context.Context, tx pgx.Tx) ([]int64, error) { return countRows(ctx, tx, p, rts) })
	if err != nil {
		return nil, fmt.Errorf("count differing rows of %s: %w", p.Name, err)
	}
	var out []Diff
	for i, d := range ds {
		switch n := got[0][i] - got[1][i]; {
		case n > 0:
			d.Kind, d.Count = "missing", n
		case n < 0:
			d.Kind, d.Count = "extra", -n
		default:
			continue
		}
		out = append(out, d)
	}
	return out, nil
}
