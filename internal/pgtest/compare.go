package pgtest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgver"
)

// TableDump returns every row of table (a quoted, qualified name) as text lines, sorted, under
// pinned settings, with columns in cols order (all columns by name order when cols is empty).
func TableDump(t testing.TB, url, table string, cols []string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SET DateStyle=ISO; SET IntervalStyle=postgres; SET TimeZone=UTC; SET extra_float_digits=3; SET bytea_output=hex")
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) == 0 {
		// Types printed with floats compare by their binary form (pgver.FloatSend): an 11
		// server prints 17 digits, 12+ the shortest exact ones, for the same value.
		rows, err := conn.Query(ctx, `SELECT quote_ident(attname), format_type(atttypid, NULL)
			FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND `+pgver.Of(conn).StoredColumn("pg_attribute")+` ORDER BY attname`, table)
		if err != nil {
			t.Fatalf("pgtest: columns of %s: %v", table, err)
		}
		var name, typ string
		_, err = pgx.ForEachRow(rows, []any{&name, &typ}, func() error {
			if f, ok := pgver.FloatSend[typ]; ok {
				name = "encode(" + f + "(" + name + "), 'hex')"
			}
			cols = append(cols, name)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var buf strings.Builder
	_, err = conn.PgConn().CopyTo(ctx, &buf, fmt.Sprintf("COPY (SELECT %s FROM %s) TO STDOUT", strings.Join(cols, ", "), table))
	if err != nil {
		t.Fatalf("pgtest: dump %s: %v", table, err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		lines = nil
	}
	sortStrings(lines)
	return lines
}

// RequireSameTable fails the test unless table holds exactly the same rows on both URLs.
func RequireSameTable(t testing.TB, srcURL, dstURL, table string) {
	t.Helper()
	a := TableDump(t, srcURL, table, nil)
	b := TableDump(t, dstURL, table, nil)
	if len(a) != len(b) {
		t.Errorf("%s: source has %d rows, target %d", table, len(a), len(b))
	}
	diffs := 0
	ia, ib := 0, 0
	for (ia < len(a) || ib < len(b)) && diffs < 10 {
		switch {
		case ib >= len(b) || (ia < len(a) && a[ia] < b[ib]):
			t.Errorf("%s: only on source: %s", table, a[ia])
			ia++
			diffs++
		case ia >= len(a) || b[ib] < a[ia]:
			t.Errorf("%s: only on target: %s", table, b[ib])
			ib++
			diffs++
		default:
			ia++
			ib++
		}
	}
}

// UserTables lists the quoted, qualified names of ordinary and partitioned tables outside system
// schemas and outside the schemas listed in skip.
func UserTables(t testing.TB, url string, skip ...string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r','p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		AND c.relpersistence <> 't' AND NOT n.nspname = ANY($1) ORDER BY 1`, append(skip, ident.DefaultSchema))
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// RequireSameData fails the test unless every user table holds the same rows on both sides.
func RequireSameData(t testing.TB, srcURL, dstURL string, skip ...string) {
	t.Helper()
	src := UserTables(t, srcURL, skip...)
	dst := UserTables(t, dstURL, skip...)
	if strings.Join(src, ",") != strings.Join(dst, ",") {
		t.Errorf("table lists differ:\nsource: %v\ntarget: %v", src, dst)
	}
	for _, tb := range src {
		RequireSameTable(t, srcURL, dstURL, tb)
	}
}

// sortStrings sorts in byte order, independent of any collation.
func sortStrings(s []string) { sort.Strings(s) }
