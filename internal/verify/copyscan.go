package verify

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/ident"
)

// inlineArgs puts a chunk's bounds into its condition as literals: COPY takes no parameters.
func inlineArgs(c chunk) string {
	w := c.where
	for i := len(c.args); i >= 1; i-- {
		w = strings.ReplaceAll(w, fmt.Sprintf("$%d", i), eLiteral(fmt.Sprint(c.args[i-1])))
	}
	return w
}

// scanChunkCopy reads one chunk of a table with COPY, hashes its rows here, adds its buckets to
// out and returns how many rows it held.
func scanChunkCopy(ctx context.Context, s *side, p *pair, mask int64, c chunk, out *buckets) (rows int64, err error) {
	q := copySelect(p, p.Binary, inlineArgs(c), nil)
	err = s.inSnapshot(ctx, func(tx pgx.Tx) error {
		local := make([]agg, mask+1)
		rs := &rowScanner{binary: p.Binary, nk: len(p.Key), nh: len(p.Cols), onRow: func(kh, rh uint64, _ [][]byte) error {
			if p.NoKey {
				kh = rh // a keyless table's buckets are by row hash
			}
			a := &local[kh&uint64(mask)]
			a.n++
			a.sum += rh
			return nil
		}}
		if _, err := tx.Conn().PgConn().CopyTo(ctx, rs, q); err != nil {
			return fmt.Errorf("hash %s on %s: %w", p.Name, s.role, err)
		}
		if err := rs.finish(); err != nil {
			return fmt.Errorf("hash %s on %s: %w", p.Name, s.role, err)
		}
		// Only a completed chunk counts: a retried chunk never adds twice.
		for k, a := range local {
			if a.n > 0 {
				out.add(int64(k), a)
			}
		}
		out.addRows(rs.rows)
		rows = rs.rows
		return nil
	})
	return rows, err
}

// keyEntry is what narrowing keeps of a key on one side.
type keyEntry struct {
	vals []string
	h    uint64 // sum of the hashes of its rows
	n    int    // rows holding it (more than one only without a unique key)
}

// narrowCopy reads both sides again with COPY, keeps the rows of the mismatched buckets and
// returns their keys that differ (at most limit, in key byte order); more reports whether there
// were more.
func narrowCopy(ctx context.Context, src, dst *side, p *pair, mask int64, bks []int64, limit int) (keys [][]string, more bool, err error) {
	cut := len(bks) > limit+1 // every mismatched bucket holds at least one differing key
	if cut {
		bks = bks[:limit+1]
	}
	want := map[uint64]bool{}
	for _, b := range bks {
		want[uint64(b)] = true
	}
	extra := make([]string, len(p.Key))
	for i, k := range p.Key {
		extra[i] = ident.Quote(k.Name) + "::text"
	}
	q := copySelect(p, p.Binary, "true", extra)
	var found [2]map[string]*keyEntry
	errs := make(chan error, 2)
	for i, s := range []*side{src, dst} {
		m := map[string]*keyEntry{}
		found[i] = m
		go func() {
			errs <- s.inSnapshot(ctx, func(tx pgx.Tx) error {
				clear(m)
				rs := &rowScanner{binary: p.Binary, nk: len(p.Key), nh: len(p.Cols), nExtra: len(p.Key), onRow: func(kh, rh uint64, ex [][]byte) error {
					if !want[kh&uint64(mask)] {
						return nil
					}
					var kt strings.Builder
					for j, v := range ex {
						if j > 0 {
							kt.WriteByte(0)
						}
						kt.Write(v)
					}
					e := m[kt.String()]
					if e == nil {
						e = &keyEntry{}
						for _, v := range ex {
							e.vals = append(e.vals, string(v))
						}
						m[kt.String()] = e
					}
					e.h += rh
					e.n++
					return nil
				}}
				if _, err := tx.Conn().PgConn().CopyTo(ctx, rs, q); err != nil {
					return err
				}
				return rs.finish()
			})
		}()
	}
	for range 2 {
		if e := <-errs; e != nil && err == nil {
			err = fmt.Errorf("narrow %s: %w", p.Name, e)
		}
	}
	if err != nil {
		return nil, false, err
	}
	keys, more = differingKeys(found, limit)
	return keys, more || cut, nil
}

// differingKeys lists the keys (in key byte order) held by one side only, with different hashes,
// or more than once; at most limit of them (more reports whether there were more).
func differingKeys(found [2]map[string]*keyEntry, limit int) (keys [][]string, more bool) {
	diff := map[string]bool{}
	for kt, a := range found[0] {
		if b := found[1][kt]; b == nil || a.h != b.h || a.n != b.n || a.n > 1 {
			diff[kt] = true
		}
	}
	for kt, b := range found[1] {
		if found[0][kt] == nil || b.n > 1 {
			diff[kt] = true
		}
	}
	kts := make([]string, 0, len(diff))
	for kt := range diff {
		kts = append(kts, kt)
	}
	sort.Strings(kts)
	if len(kts) > limit {
		kts, more = kts[:limit], true
	}
	for _, kt := range kts {
		e := found[0][kt]
		if e == nil {
			e = found[1][kt]
		}
		keys = append(keys, e.vals)
	}
	return keys, more
}

// chooseFormats reads every comparable table with binary COPY unless a column's binary form
// embeds database-specific OIDs (arrays and composites of user-defined types) or has none.
func chooseFormats(ctx context.Context, src *side, pairs []*pair) error {
	var tables []*catalog.Table
	for _, p := range pairs {
		if p.Src != nil && p.Dst != nil && (p.Reason == "" || p.NoKey) {
			tables = append(tables, p.Src)
		}
	}
	if len(tables) == 0 {
		return nil
	}
	textOnly, err := catalog.TextOnlyTables(ctx, src.exporter, tables)
	if err != nil {
		return err
	}
	for _, p := range pairs {
		p.Binary = p.Src != nil && !textOnly[p.Src.Key()]
	}
	return nil
}
