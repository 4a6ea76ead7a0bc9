package copyout

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func table(t *testing.T, conn *pgx.Conn, key string) *catalog.Table {
	t.Helper()
	all, err := catalog.ListTables(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range all {
		if tb.Key() == key {
			return tb
		}
	}
	t.Fatalf("no table %s", key)
	return nil
}

// checkPlan verifies that the chunks cover every row exactly once and hold about even row
// counts (each within tol of the mean), and returns the per-chunk counts.
func checkPlan(t *testing.T, conn *pgx.Conn, tp *TablePlan, wantKind string, minChunks int, tol float64) []int64 {
	t.Helper()
	ctx := context.Background()
	if len(tp.Chunks) < minChunks {
		t.Fatalf("%s: %d chunks, want at least %d: %+v", tp.Key(), len(tp.Chunks), minChunks, tp.Chunks)
	}
	var total int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM ONLY "+tp.String()).Scan(&total); err != nil {
		t.Fatal(err)
	}
	var sum int64
	var counts []int64
	var nots []string
	for i, c := range tp.Chunks {
		if c.Kind != wantKind {
			t.Fatalf("chunk %d kind %s, want %s", i, c.Kind, wantKind)
		}
		if c.ID != i {
			t.Fatalf("chunk %d has id %d", i, c.ID)
		}
		if (i == 0) != (c.Lower == nil) || (i == len(tp.Chunks)-1) != (c.Upper == nil) {
			t.Fatalf("chunk %d bounds: only the first is open below and only the last above: %+v", i, c)
		}
		if i > 0 && *tp.Chunks[i-1].Upper != *c.Lower {
			t.Fatalf("chunk %d lower %q != previous upper %q", i, *c.Lower, *tp.Chunks[i-1].Upper)
		}
		w := c.Where(tp.Table)
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM ONLY "+tp.String()+" WHERE "+w).Scan(&n); err != nil {
			t.Fatalf("chunk %d where %s: %v", i, w, err)
		}
		counts = append(counts, n)
		sum += n
		nots = append(nots, "NOT ("+w+")")
		// The COPY statement must run too.
		var buf strings.Builder
		if _, err := conn.PgConn().CopyTo(ctx, &buf, c.CopySQL(tp.Table)); err != nil {
			t.Fatalf("chunk %d copy %s: %v", i, c.CopySQL(tp.Table), err)
		}
		if got := int64(strings.Count(buf.String(), "\n")); got != n {
			t.Fatalf("chunk %d: COPY gave %d rows, count %d", i, got, n)
		}
	}
	var missing int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM ONLY "+tp.String()+" WHERE "+strings.Join(nots, " AND ")).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing != 0 || sum != total {
		t.Fatalf("%s: %d rows in no chunk, chunks sum to %d of %d rows (overlap or gap)", tp.Key(), missing, sum, total)
	}
	mean := float64(total) / float64(len(counts))
	for i, n := range counts {
		if float64(n) < mean*(1-tol) || float64(n) > mean*(1+tol) {
			t.Errorf("%s: chunk %d has %d rows, mean %.0f (counts %v)", tp.Key(), i, n, mean, counts)
		}
	}
	return counts
}

func planOf(t *testing.T, conn *pgx.Conn, key string, chunks int) *TablePlan {
	t.Helper()
	tb := table(t, conn, key)
	p := Planner{SplitSize: tb.Bytes/int64(chunks) + 1, Jobs: 1}
	tp, err := p.Plan(context.Background(), conn, tb)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestPlanKeyTypes(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, `
-- skewed: three quarters of the rows in a dense range, the rest spread over a huge key space
CREATE TABLE skew(id bigint PRIMARY KEY, pad text);
INSERT INTO skew SELECT i, repeat('x', 40) FROM generate_series(1, 60000) i;
INSERT INTO skew SELECT 1000000 + i * 50000, repeat('x', 40) FROM generate_series(1, 20000) i;
CREATE TABLE "Text Keys"("Key Col" text PRIMARY KEY, v int);
INSERT INTO "Text Keys" SELECT md5(i::text) || E'\t\\ é', i FROM generate_series(1, 40000) i;
CREATE TABLE uu(id uuid PRIMARY KEY, v int);
INSERT INTO uu SELECT md5(i::text)::uuid, i FROM generate_series(1, 40000) i;
CREATE TABLE comp(a int NOT NULL, b text NOT NULL, v int, PRIMARY KEY (a, b));
INSERT INTO comp SELECT i % 2000, 'b' || i, i FROM generate_series(1, 60000) i;
CREATE TABLE ts(at timestamptz PRIMARY KEY, v int);
INSERT INTO ts SELECT '2020-01-01'::timestamptz + i * interval '17 seconds', i FROM generate_series(1, 40000) i;
ANALYZE;
`)
	conn := connect(t, db.URL)
	for _, tc := range []struct {
		table  string
		chunks int
		tol    float64
	}{
		{"public.skew", 4, 0.3},
		{"public.Text Keys", 5, 0.3},
		{"public.uu", 4, 0.3},
		{"public.comp", 4, 0.35},
		{"public.ts", 6, 0.3},
	} {
		t.Run(tc.table, func(t *testing.T) {
			tp := planOf(t, conn, tc.table, tc.chunks)
			checkPlan(t, conn, tp, KindKey, tc.chunks, tc.tol)
		})
	}
}

func TestPlanSampledQuantiles(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, `
CREATE TABLE nostats(id bigint PRIMARY KEY, pad text);
ALTER TABLE nostats ALTER COLUMN id SET STATISTICS 0;
INSERT INTO nostats SELECT i::bigint * i, repeat('y', 60) FROM generate_series(1, 80000) i;
ANALYZE nostats;
`)
	conn := connect(t, db.URL)
	var hist *string
	conn.QueryRow(context.Background(), "SELECT histogram_bounds::text FROM pg_stats WHERE tablename = 'nostats' AND attname = 'id'").Scan(&hist)
	if hist != nil {
		t.Fatalf("expected no histogram, got one")
	}
	tp := planOf(t, conn, "public.nostats", 4)
	checkPlan(t, conn, tp, KindKey, 4, 0.3)
}

func TestPlanCtid(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, `
CREATE TABLE heap(a int, b text);
INSERT INTO heap SELECT i, repeat('z', 80) FROM generate_series(1, 50000) i;
CREATE TABLE nullkey(a int UNIQUE, b text);
INSERT INTO nullkey SELECT i, 'b' FROM generate_series(1, 50000) i;
ANALYZE;
`)
	conn := connect(t, db.URL)
	checkPlan(t, conn, planOf(t, conn, "public.heap", 4), KindCtid, 4, 0.1)
	// a composite key led by a column of three values cannot give 6 even key ranges: ctid does
	db.Exec(t, `CREATE TABLE tenants(tenant int NOT NULL, id int NOT NULL, pad text, PRIMARY KEY (tenant, id));
INSERT INTO tenants SELECT i % 3, i, repeat('t', 40) FROM generate_series(1, 30000) i; ANALYZE tenants;`)
	checkPlan(t, conn, planOf(t, conn, "public.tenants", 6), KindCtid, 6, 0.1)
	// a unique index over a nullable column is no key: ctid ranges cover its NULL-able rows
	db.Exec(t, "INSERT INTO nullkey VALUES (NULL, 'n'), (NULL, 'm')")
	checkPlan(t, conn, planOf(t, conn, "public.nullkey", 3), KindCtid, 3, 0.1)
}

func TestPlanSmallAndJobs(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, `CREATE TABLE big(id int PRIMARY KEY, pad text);
INSERT INTO big SELECT i, repeat('p', 100) FROM generate_series(1, 20000) i; ANALYZE big;`)
	conn := connect(t, db.URL)
	tb := table(t, conn, "public.big")
	ctx := context.Background()
	tp, err := Planner{SplitSize: tb.Bytes * 2, Jobs: 8}.Plan(ctx, conn, tb)
	if err != nil || len(tp.Chunks) != 1 || tp.Chunks[0].Kind != KindAll || tp.Chunks[0].Where(tb) != "" {
		t.Fatalf("small table: %+v %v", tp, err)
	}
	// just over the split size: one huge table must still use every worker
	tp, err = Planner{SplitSize: tb.Bytes - 1, Jobs: 8}.Plan(ctx, conn, tb)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, conn, tp, KindKey, 8, 0.35)
}

func TestCopySQL(t *testing.T) {
	lo, hi := "a'b", "(3,0)"
	tb := &catalog.Table{Columns: []catalog.Column{{Name: "Id", Type: "text"}, {Name: "v", Type: "int"}}, KeyColumns: []string{"Id"}}
	tb.Schema, tb.Name = "My Schema", "T"
	for _, tc := range []struct {
		c    Chunk
		inh  bool
		want string
	}{
		{Chunk{Kind: KindAll}, false, `COPY "My Schema"."T" ("Id", "v") TO STDOUT`},
		{Chunk{Kind: KindAll}, true, `COPY "My Schema"."T" ("Id", "v") TO STDOUT`}, // COPY TO never reads children
		{Chunk{Kind: KindKey, Lower: &lo}, false, `COPY (SELECT "Id", "v" FROM ONLY "My Schema"."T" WHERE "Id" >= CAST('a''b' AS text)) TO STDOUT`},
		{Chunk{Kind: KindCtid, Upper: &hi}, false, `COPY (SELECT "Id", "v" FROM ONLY "My Schema"."T" WHERE ctid < CAST('(3,0)' AS tid)) TO STDOUT`},
	} {
		tb.Inherited = tc.inh
		if got := tc.c.CopySQL(tb); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
	if got := fmt.Sprint(pickCuts([]string{"0", "1", "2", "3", "4", "5", "6", "7", "8"}, 4, true)); got != "[2 4 6]" {
		t.Errorf("pickCuts = %s", got)
	}
	if got := fmt.Sprint(pickCuts([]string{"0", "5"}, 8, true)); got != "[0 5]" {
		t.Errorf("pickCuts on a short histogram = %s", got)
	}
}

func TestPlanNoTIDRangeScan(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, `CREATE TABLE heap(a int, b text); INSERT INTO heap SELECT i, repeat('z', 80) FROM generate_series(1, 5000) i;`)
	conn := connect(t, db.URL)
	tb := table(t, conn, "public.heap")
	tp, err := Planner{SplitSize: 1024, Jobs: 4, NoTIDRangeScan: true}.Plan(context.Background(), conn, tb)
	if err != nil || len(tp.Chunks) != 1 || tp.Chunks[0].Kind != KindAll {
		t.Fatalf("before PostgreSQL 14 a keyless table is one chunk: %+v %v", tp, err)
	}
}

// TestPlanSplitBy: with one shared snapshot, a table whose key is stored out of order is split by
// ctid ranges (key ranges would read the heap at random), one stored in key order by key ranges;
// without a shared snapshot, or when asked, by key ranges; --split-by ctid forces block ranges.
func TestPlanSplitBy(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, `CREATE TABLE ordered(id int PRIMARY KEY, v text);
		INSERT INTO ordered SELECT i, repeat('o', 60) FROM generate_series(1, 6000) i;
		CREATE TABLE shuffled(id uuid PRIMARY KEY, v text);
		INSERT INTO shuffled SELECT md5(i::text)::uuid, repeat('s', 60) FROM generate_series(1, 6000) i;
		ANALYZE;`)
	conn := connect(t, db.URL)
	ctx := context.Background()
	for _, tc := range []struct {
		table, splitBy string
		ctidOK         bool
		want           string
	}{
		{"public.ordered", "", true, KindKey},
		{"public.shuffled", "", true, KindCtid},
		{"public.shuffled", "", false, KindKey},
		{"public.shuffled", "key", true, KindKey},
		{"public.ordered", "ctid", true, KindCtid},
		{"public.ordered", "ctid", false, KindKey},
	} {
		tb := table(t, conn, tc.table)
		tp, err := Planner{SplitSize: 16 << 10, Jobs: 4, SplitBy: tc.splitBy, CtidOK: tc.ctidOK}.Plan(ctx, conn, tb)
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, conn, tp, tc.want, 4, 0.5)
	}
}
