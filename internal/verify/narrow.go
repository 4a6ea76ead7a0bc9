package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

// Diff is one key whose row differs between the sides.
type Diff struct {
	Kind    string            `json:"kind"` // missing (on source, not on target), extra (on target only), changed, duplicate (key held more than once)
	Key     map[string]string `json:"key"`
	Columns []string          `json:"columns,omitempty"` // changed: the columns that differ
	vals    []string          // key values in key order
}

// keyRow is one row's key and hash as read by the narrowing scan.
type keyRow struct {
	kt   string   // sort key: text of the compared key values
	vals []string // key values as text, in key order
	h    string
}

// narrow reads the rows of the mismatched buckets from both sides, ordered by key bytes, and
// merges them into the keys that differ: at most limit of them; more reports whether there were more.
func narrow(ctx context.Context, src, dst *side, p *pair, fn string, mask int64, bks []int64, limit int) (keys [][]string, more bool, err error) {
	kexpr := make([]string, len(p.Key))
	for i, k := range p.Key {
		kexpr[i] = ident.Quote(k.Name) + "::text"
	}
	q := fmt.Sprintf(`SELECT kt, ARRAY[%s], h::text FROM (SELECT %s AS kt, %s AS b, %s AS h, %s FROM %s) s
		WHERE b = ANY($1::bigint[]) ORDER BY kt COLLATE "C"`,
		strings.Join(kexpr, ", "), rowText(p.Key), bucketExpr(p, fn, mask), hashExpr(p, fn), ident.QuoteList(keyNames(p)), p.from())
	// Every mismatched bucket holds at least one differing key: limit+1 buckets are enough.
	cut := len(bks) > limit+1
	if cut {
		bks = bks[:limit+1]
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chans := [2]chan keyRow{make(chan keyRow, 256), make(chan keyRow, 256)}
	errs := [2]error{}
	done := make(chan struct{}, 2)
	for i, s := range []*side{src, dst} {
		go func() {
			defer func() { done <- struct{}{} }()
			defer close(chans[i])
			errs[i] = s.inSnapshot(ctx, func(tx pgx.Tx) error {
				rows, err := tx.Query(ctx, q, bks)
				if err != nil {
					return err
				}
				var r keyRow
				_, err = pgx.ForEachRow(rows, []any{&r.kt, &r.vals, &r.h}, func() error {
					select {
					case chans[i] <- keyRow{kt: r.kt, vals: append([]string(nil), r.vals...), h: r.h}:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				})
				return err
			})
		}()
	}
	// A key held twice by a side without a unique index comes twice in a row: name it once.
	var last string
	add := func(r keyRow) {
		if len(keys) == 0 || r.kt != last {
			keys = append(keys, r.vals)
			last = r.kt
		}
	}
	a, aok := <-chans[0]
	b, bok := <-chans[1]
	for aok || bok {
		switch {
		case aok && (!bok || a.kt < b.kt):
			add(a)
			a, aok = <-chans[0]
		case bok && (!aok || b.kt < a.kt):
			add(b)
			b, bok = <-chans[1]
		default:
			if a.h != b.h {
				add(a)
			}
			a, aok = <-chans[0]
			b, bok = <-chans[1]
		}
		if len(keys) > limit {
			keys, more = keys[:limit], true
			break
		}
	}
	cancel()
	<-done
	<-done
	more = more || cut
	if !more {
		if err := errors.Join(errs[0], errs[1]); err != nil {
			return nil, false, fmt.Errorf("narrow %s: %w", p.Name, err)
		}
	}
	return keys, more, nil
}

func keyNames(p *pair) []string {
	n := make([]string, len(p.Key))
	for i, k := range p.Key {
		n[i] = k.Name
	}
	return n
}

// keyFilter is a WHERE condition matching the keys passed as one text array per key column.
func keyFilter(p *pair) string {
	cols := make([]string, len(p.Key))
	casts := make([]string, len(p.Key))
	arrays := make([]string, len(p.Key))
	names := make([]string, len(p.Key))
	for i, k := range p.Key {
		cols[i] = ident.Quote(k.Name)
		names[i] = fmt.Sprintf("k%d", i)
		casts[i] = fmt.Sprintf("u.k%d::%s", i, k.Type)
		arrays[i] = fmt.Sprintf("$%d::text[]", i+1)
	}
	return fmt.Sprintf("(%s) IN (SELECT %s FROM unnest(%s) u(%s))",
		strings.Join(cols, ", "), strings.Join(casts, ", "), strings.Join(arrays, ", "), strings.Join(names, ", "))
}

// keyArgs turns keys into one text array per key column, the arguments of keyFilter.
func keyArgs(p *pair, keys [][]string) []any {
	args := make([]any, len(p.Key))
	for i := range p.Key {
		col := make([]string, len(keys))
		for j, k := range keys {
			col[j] = k[i]
		}
		args[i] = col
	}
	return args
}

// fetched is a row read by key: key values, compared values, and values as text (nil = NULL).
type fetched struct {
	cmp []*string
	raw []*string
	n   int // rows with this key (more than 1 only where the side has no unique key)
}

// fetchRows reads the rows of keys on one side, indexed by their joined key text.
func fetchRows(ctx context.Context, tx pgx.Tx, p *pair, keys [][]string) (map[string]fetched, error) {
	out := map[string]fetched{}
	exprs := make([]string, 0, 2*len(p.Cols)+len(p.Key))
	for _, k := range p.Key {
		exprs = append(exprs, ident.Quote(k.Name)+"::text")
	}
	for _, c := range p.Cols {
		exprs = append(exprs, cmpExpr(c, "")+"::text")
	}
	for _, c := range p.Cols {
		exprs = append(exprs, ident.Quote(c.Name)+"::text")
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s", strings.Join(exprs, ", "), p.from(), keyFilter(p))
	const batch = 1000
	for lo := 0; lo < len(keys); lo += batch {
		rows, err := tx.Query(ctx, q, keyArgs(p, keys[lo:min(lo+batch, len(keys))])...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			vals := make([]*string, len(exprs))
			ptrs := make([]any, len(exprs))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, err
			}
			kv := make([]string, len(p.Key))
			for i := range kv {
				kv[i] = *vals[i]
			}
			n := len(p.Key)
			jk := joinKey(kv)
			out[jk] = fetched{cmp: vals[n : n+len(p.Cols)], raw: vals[n+len(p.Cols):], n: out[jk].n + 1}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func joinKey(vals []string) string { return strings.Join(vals, "\x00") }

// classify reads keys on both sides (through run, in the snapshot or fresh) and returns the
// keys that differ, with their kind and differing columns, in the order of keys.
func classify(ctx context.Context, p *pair, keys [][]string, runSrc, runDst func(context.Context, func(pgx.Tx) error) error) ([]Diff, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	var got [2]map[string]fetched
	g, gctx := newGroup(ctx)
	for i, run := range []func(context.Context, func(pgx.Tx) error) error{runSrc, runDst} {
		g.Go(func() error {
			return run(gctx, func(tx pgx.Tx) error {
				m, err := fetchRows(gctx, tx, p, keys)
				got[i] = m
				return err
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("read differing rows of %s: %w", p.Name, err)
	}
	var out []Diff
	for _, k := range keys {
		jk := joinKey(k)
		a, ina := got[0][jk]
		b, inb := got[1][jk]
		d := Diff{Key: map[string]string{}, vals: k}
		for i, kc := range p.Key {
			d.Key[kc.Name] = k[i]
		}
		switch {
		case ina && !inb:
			d.Kind = "missing"
		case inb && !ina:
			d.Kind = "extra"
		case !ina && !inb:
			continue
		case a.n > 1 || b.n > 1:
			// A side without a unique index holds the key more than once (a chunk loaded twice).
			d.Kind = "duplicate"
			d.Columns = nil
		default:
			for i, c := range p.Cols {
				if !sameVal(a.cmp[i], b.cmp[i]) {
					d.Columns = append(d.Columns, c.Name)
				}
			}
			if len(d.Columns) == 0 {
				continue
			}
			d.Kind = "changed"
		}
		out = append(out, d)
	}
	return out, nil
}

func sameVal(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}
