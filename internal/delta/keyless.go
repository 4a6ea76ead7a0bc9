package delta

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/ident"
)

// Tables without a key are captured as whole rows (docs/capture.md, "## Tables without a key"):
// a batch reads the distinct rows written in it from the delta table, counts the copies of each
// the table holds as of S, and writes one `rows` record per distinct row. Apply deletes the
// target's copies of each such row and inserts as many as the source holds. Rows are matched
// by identity of their values, NULL matching NULL (sameRowSQL), on each side by its own
// session: no hash or text form ever crosses from one server to the other.

// sameRowSQL is the condition "rows a and b hold identical values", aCols and bCols naming the
// same columns on each. A column marked exact (NOT NULL, and its = holds exactly when the text
// forms are equal: catalog.IdentitySQL) is compared with =, which an index or a hash join can
// use; the others together as one ROW(...)::text in the C collation, which is NULL-safe and
// works for types without equality (json, point).
func sameRowSQL(a string, aCols []string, b string, bCols []string, exact []bool) string {
	var conds, ra, rb []string
	for i := range aCols {
		x, y := a+"."+ident.Quote(aCols[i]), b+"."+ident.Quote(bCols[i])
		if i < len(exact) && exact[i] {
			conds = append(conds, x+" OPERATOR(pg_catalog.=) "+y)
		} else {
			ra, rb = append(ra, x), append(rb, y)
		}
	}
	switch {
	case len(ra) > 0 && len(conds) > 0:
		// Not =, so the planner keeps it out of a hash join's key: formatting every row of a big
		// table to hash it costs more than the join; the exact columns find the candidates.
		conds = append(conds, rowText(ra)+" IS NOT DISTINCT FROM "+rowText(rb))
	case len(ra) > 0:
		conds = append(conds, rowText(ra)+" OPERATOR(pg_catalog.=) "+rowText(rb))
	}
	return strings.Join(conds, " AND ")
}

// rowText is the text form of a row of expressions, compared byte by byte.
func rowText(exprs []string) string {
	return "(ROW(" + strings.Join(exprs, ", ") + `)::pg_catalog.text COLLATE pg_catalog."C")`
}

func qualified(alias string, cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = alias + "." + ident.Quote(c)
	}
	return out
}

// keylessChanges writes, for every distinct row written to a keyless table in the batch, how
// many copies of it the table holds as of S (0 when none is left).
func (rd *batchRead) keylessChanges(ctx context.Context, t *captured) error {
	dc := capture.DeltaColumns(t.keyCols, true)
	dq := strings.Join(qualified("x", dc), ", ")
	q := fmt.Sprintf(`WITH d AS (SELECT row_number() OVER () AS i, %[1]s FROM (
    SELECT DISTINCT ON %[2]s %[1]s FROM %[3]s x WHERE %[4]s ORDER BY %[2]s) x),
  m AS (SELECT d.i, count(*) AS n FROM d JOIN %[5]s t ON %[6]s GROUP BY d.i)
SELECT coalesce(m.n, 0), %[7]s FROM d LEFT JOIN m ON m.i = d.i`,
		dq, rowText(qualified("x", dc)), t.delta, inRange, t.from,
		sameRowSQL("t", t.cols, "d", dc, t.exact), strings.Join(qualified("d", dc), ", "))
	if err := queryText(ctx, rd.pc, q, rd.args, func(v [][]byte) error {
		return rd.writeRows(t, v)
	}); err != nil {
		return fmt.Errorf("read changes of %s: %w", t.name, err)
	}
	return nil
}

// keylessReload writes a truncated keyless table's whole content, one record per distinct row.
func (rd *batchRead) keylessReload(ctx context.Context, t *captured) error {
	dc := capture.DeltaColumns(t.cols, true)
	as := make([]string, len(t.cols))
	for i, c := range qualified("t", t.cols) {
		as[i] = c + " AS " + dc[i]
	}
	q := fmt.Sprintf(`SELECT x.n, %s FROM (SELECT count(*) OVER w AS n, row_number() OVER w AS r, %s FROM %s t
  WINDOW w AS (PARTITION BY %s)) x WHERE x.r = 1`,
		strings.Join(qualified("x", dc), ", "), strings.Join(as, ", "), t.from, rowText(qualified("t", t.cols)))
	if err := queryText(ctx, rd.pc, q, nil, func(v [][]byte) error {
		return rd.writeRows(t, v)
	}); err != nil {
		return fmt.Errorf("reload truncated %s: %w", t.name, err)
	}
	return nil
}

// writeRows writes one rows record from a result row: the count, then the values.
func (rd *batchRead) writeRows(t *captured, v [][]byte) error {
	n, err := strconv.ParseInt(string(v[0]), 10, 64)
	if err != nil {
		return fmt.Errorf("count of a row of %s: %w", t.name, err)
	}
	if err := rd.out.begin(); err != nil {
		return err
	}
	if err := rd.out.sink.Rows(t.name, t.cols, v[1:], n); err != nil {
		return err
	}
	return rd.out.count()
}

// applyRows applies a table's staged rows records: a row named twice is refused (the counts of
// both would add up), then every target copy of each row is deleted and count copies inserted.
func (a *Applier) applyRows(ctx context.Context, s *stage) error {
	t := s.t
	// Statistics of the staged rows let the planner probe the table's index for a few rows
	// instead of hashing the whole table (it guesses about a thousand rows for a temp table).
	if _, err := a.tx.Exec(ctx, "ANALYZE pg_temp."+s.temp); err != nil {
		return fmt.Errorf("analyze staged rows of %s: %w", t.name, err)
	}
	var dup bool
	q := fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM pg_temp.%s s GROUP BY %s HAVING count(*) > 1)", s.temp, rowText(qualified("s", t.cols)))
	if err := a.tx.QueryRow(ctx, q).Scan(&dup); err != nil {
		return fmt.Errorf("check rows records of %s: %w", t.name, err)
	}
	if dup {
		return &DriftError{Table: t.name, Err: errors.New("a row is named by more than one rows record in the batch")}
	}
	del := fmt.Sprintf("DELETE FROM %s t USING pg_temp.%s s WHERE %s", t.sql, s.temp, sameRowSQL("t", t.cols, "s", t.cols, t.exact))
	if _, err := a.tx.Exec(ctx, del); err != nil {
		return fmt.Errorf("delete changed rows of %s: %w", t.name, err)
	}
	ins := fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM pg_temp.%s s CROSS JOIN LATERAL pg_catalog.generate_series(1, s.pgferry_count__) g",
		t.plain, ident.QuoteList(t.cols), strings.Join(qualified("s", t.cols), ", "), s.temp)
	if _, err := a.tx.Exec(ctx, ins); err != nil {
		return fmt.Errorf("insert changed rows of %s: %w", t.name, err)
	}
	return nil
}
