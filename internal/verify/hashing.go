package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgver"
)

// Hash functions a row can be hashed with on the server.
const (
	hashHTE = "hashtextextended" // PostgreSQL 11+, fast; output is compared by a probe first
	hashMD5 = "md5"              // everywhere, slower
)

// probeText is hashed on both servers to detect a hash function that differs between them.
const probeText = `pgferry probe: 0 ü 🦀 "quoted" \ tab	end`

// chooseHash picks the row hash: hashtextextended when both servers have it and agree on
// the probe, else md5 (which must agree, or nothing can be compared).
func chooseHash(ctx context.Context, src, dst *side, want string) (string, error) {
	probe := func(s *side, sql string) (string, error) {
		var out string
		// A savepoint keeps the snapshot transaction usable if the function does not exist.
		if _, err := s.exporter.Exec(ctx, "SAVEPOINT probe"); err != nil {
			return "", err
		}
		err := s.exporter.QueryRow(ctx, sql, probeText).Scan(&out)
		if err != nil {
			if _, err2 := s.exporter.Exec(ctx, "ROLLBACK TO SAVEPOINT probe"); err2 != nil {
				return "", err2
			}
			return "", err
		}
		_, err = s.exporter.Exec(ctx, "RELEASE SAVEPOINT probe")
		return out, err
	}
	if want == hashClient {
		return hashClient, nil
	}
	if want == "auto" || want == hashHTE {
		// hashint8extended buckets integer keys; it is probed along with the text hash.
		const q = "SELECT hashtextextended($1::text, 0)::text || ',' || hashtextextended($1::text, 1)::text || ',' || hashint8extended(-1234567890123, 0)::text"
		a, errA := probe(src, q)
		b, errB := probe(dst, q)
		if errA == nil && errB == nil && a == b {
			return hashHTE, nil
		}
		if want == hashHTE {
			if err := errors.Join(errA, errB); err != nil {
				return "", fmt.Errorf("probe hashtextextended: %w", err)
			}
			return "", fmt.Errorf("probe hashtextextended: the servers disagree (%s versus %s)", a, b)
		}
	}
	const q = "SELECT md5($1::text)"
	a, err := probe(src, q)
	if err != nil {
		return "", fmt.Errorf("probe md5 on source: %w", err)
	}
	b, err := probe(dst, q)
	if err != nil {
		return "", fmt.Errorf("probe md5 on target: %w", err)
	}
	if a != b {
		return "", fmt.Errorf("probe md5: the servers disagree (%s versus %s)", a, b)
	}
	return hashMD5, nil
}

// cmpExpr is the expression compared for a column, qualified by alias unless it is empty: its
// text form, except types made of floats, whose IEEE bits are compared (see pgver.FloatSend). reg*
// values compare by their text, the object's name: tables holding them are never read with
// binary COPY (catalog.TextOnlyTables), whose form of them is the OID.
func cmpExpr(c catalog.Column, alias string) string {
	q := ident.Quote(c.Name)
	if alias != "" {
		q = alias + "." + q
	}
	if f, ok := pgver.FloatSend[c.Type]; ok {
		return f + "(" + q + ")"
	}
	return q
}

// rowText is the text form of a row's compared values, columns in one explicit order.
func rowText(cols []catalog.Column) string {
	e := make([]string, len(cols))
	for i, c := range cols {
		e[i] = cmpExpr(c, "")
	}
	return "ROW(" + strings.Join(e, ", ") + ")::text"
}

// maxConcatArgs is how many values one concat_ws call joins: a function takes at most 100
// arguments, the separator included.
const maxConcatArgs = 99

// hashText is the text a row's hash is taken of: each compared value's text form, NULL as the
// byte 0x1e, joined by the byte 0x1f. It carries what ROW(...)::text carries for a quarter or more
// less server CPU (no quoting pass over every value). Only a value containing those control bytes
// could make two different rows read alike. Wider rows are joined in groups of 99 values, then the
// groups: no value is NULL, so the text is the same as one call would give. The text is of
// collation "C": hashing and comparing it is bytewise whatever the columns' collations (two
// different ones would leave it none, a nondeterministic one would hash 'A' like 'a').
func hashText(cols []catalog.Column, alias string) string {
	e := make([]string, len(cols))
	for i, c := range cols {
		e[i] = "coalesce((" + cmpExpr(c, alias) + ")::text, E'\\x1e')"
	}
	for len(e) > maxConcatArgs {
		var groups []string
		for lo := 0; lo < len(e); lo += maxConcatArgs {
			groups = append(groups, concatWS(e[lo:min(lo+maxConcatArgs, len(e))]))
		}
		e = groups
	}
	return concatWS(e) + ` COLLATE "C"`
}

func concatWS(vals []string) string {
	return "concat_ws(E'\\x1f', " + strings.Join(vals, ", ") + ")"
}

// bucketExpr maps a row to its bucket (0..mask) by a hash of its key's text (keyed tables only).
func bucketExpr(p *pair, fn string, mask int64) string {
	if fn == hashHTE && p.KeyIsInts {
		// An integer key is hashed as a number: no text form to build per row.
		return fmt.Sprintf("(hashint8extended(%s::int8, 0) & %d)", ident.Quote(p.Key[0].Name), mask)
	}
	kt := hashText(p.Key, "")
	if fn == hashHTE {
		return fmt.Sprintf("(hashtextextended(%s, 0) & %d)", kt, mask)
	}
	return fmt.Sprintf("(('x' || left(md5(%s), 8))::bit(32)::int::bigint & %d)", kt, mask)
}

// hashExpr is a 64-bit hash of the whole row.
func hashExpr(p *pair, fn string) string {
	rt := hashText(p.Cols, "")
	if fn == hashHTE {
		return fmt.Sprintf("hashtextextended(%s, 1)", rt)
	}
	return fmt.Sprintf("('x' || left(md5(%s), 16))::bit(64)::bigint", rt)
}

// bucketCount chooses a power of two so a bucket holds about 64 rows, at most 4096 buckets: the
// server hash returns up to that many groups per chunk, the client hash keeps them in cache.
func bucketCount(estRows int64) int64 {
	n := int64(1)
	for n < 4096 && n*64 < estRows {
		n *= 2
	}
	return n
}
