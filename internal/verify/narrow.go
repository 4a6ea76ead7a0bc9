package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

// Diff is one key whose row differs between the sides, or one row of a table without a key
// that one side holds more often than the other.
type Diff struct {
	Kind    string             `json:"kind"` // missing (on source, not on target), extra (on target only), changed, duplicate (key held more than once)
	Key     map[string]string  `json:"key,omitempty"`
	Columns []string           `json:"columns,omitempty"` // changed: the columns that differ
	Count   int64              `json:"count,omitempty"`   // no key: how many copies of Row are missing or extra
	Row     map[string]*string `json:"row,omitempty"`     // no key: the row's values
	vals    []string           // key values in key order
	rt      string             // no key: the row's compared text, which finds it on both sides
	raw     []*string          // no key: the row's values in column order
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
	// The subquery names only its own outputs, so no column of the table (one may be called kt
	// or b) can make a reference in the outer query ambiguous.
	q := fmt.Sprintf(`SELECT kt, kv, h::text FROM (SELECT %s AS kt, ARRAY[%s] AS kv, %s AS b, %s AS h FROM %s) s
		WHERE b = ANY($1::bigint[]) ORDER BY kt COLLATE "C"`,
		rowText(p.Key), strings.Join(kexpr, ", "), bucketExpr(p, fn, mask), hashExpr(p, fn), p.from())
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
	keys, more = mergeKeys(chans, limit)
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

// mergeKeys merges the key-ordered rows of both sides into the keys that differ: on one side
// only, or with different hashes; at most limit of them (more reports whether there were more).
func mergeKeys(chans [2]chan keyRow, limit int) (keys [][]string, more bool) {
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
			return keys[:limit], true
		}
	}
	return keys, false
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

// fetchRows reads the rows of keys on one side, indexed by their joined key text. Each kind of
// value comes as one array, so a table of any width fits in the select list.
func fetchRows(ctx context.Context, tx pgx.Tx, p *pair, keys [][]string) (map[string]fetched, error) {
	out := map[string]fetched{}
	kexpr := make([]string, len(p.Key))
	for i, k := range p.Key {
		kexpr[i] = ident.Quote(k.Name) + "::text"
	}
	cmp := make([]string, len(p.Cols))
	raw := make([]string, len(p.Cols))
	for i, c := range p.Cols {
		cmp[i] = "(" + cmpExpr(c, "") + ")::text"
		raw[i] = ident.Quote(c.Name) + "::text"
	}
	q := fmt.Sprintf("SELECT ARRAY[%s], ARRAY[%s]::text[], ARRAY[%s]::text[] FROM %s WHERE %s",
		strings.Join(kexpr, ", "), strings.Join(cmp, ", "), strings.Join(raw, ", "), p.from(), keyFilter(p))
	const batch = 1000
	for lo := 0; lo < len(keys); lo += batch {
		rows, err := tx.Query(ctx, q, keyArgs(p, keys[lo:min(lo+batch, len(keys))])...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var kv []string
			var f fetched // fresh each row: scanning again into the same slices would overwrite them
			if err := rows.Scan(&kv, &f.cmp, &f.raw); err != nil {
				rows.Close()
				return nil, err
			}
			jk := joinKey(kv)
			f.n = out[jk].n + 1
			out[jk] = f
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
func classify(ctx context.Context, p *pair, keys [][]string, runSrc, runDst txRunner) ([]Diff, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	got, err := inBoth(ctx, runSrc, runDst, func(ctx context.Context, tx pgx.Tx) (map[string]fetched, error) {
		return fetchRows(ctx, tx, p, keys)
	})
	if err != nil {
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
