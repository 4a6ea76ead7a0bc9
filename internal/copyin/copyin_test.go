package copyin

import (
	"errors"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/stream"
)

// typesDDL creates tables covering the common types, quoted names and a non-public schema on db;
// from PostgreSQL 12 "Order Lines" also has a generated column (never in the stream).
func typesDDL(db *pgtest.DB) string {
	gen := ""
	if db.Cluster.Version >= 120000 {
		gen = ", gen int GENERATED ALWAYS AS (id * 2) STORED"
	}
	return strings.Replace(typesSQL, "{{gen}}", gen, 1)
}

const typesSQL = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (a int, b text);
CREATE SCHEMA "Sales Dept";
CREATE TABLE "Sales Dept"."Order Lines" (
  id int PRIMARY KEY, i2 smallint, i8 bigint, f4 real, f8 double precision, n numeric, n2 numeric(12,2),
  t text, vc varchar(10), b bytea, arr int[], tarr text[], m mood, d posint, p pair, r int4range,
  j json, jb jsonb, u uuid, ip inet, c cidr, iv interval, ts timestamptz, dt date, bt bit(4), vb varbit,
  tv tsvector, "Mixed Case" text{{gen}});
INSERT INTO "Sales Dept"."Order Lines" (id, i2, i8, f4, f8, n, n2, t, vc, b, arr, tarr, m, d, p, r, j, jb, u, ip, c, iv, ts, dt, bt, vb, tv, "Mixed Case")
SELECT g, (g % 32767)::smallint, g::bigint * 1000000007, g / 7.0, CASE g % 5 WHEN 0 THEN 'NaN' WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity' ELSE (g / 3.0)::float8 END,
  CASE g % 3 WHEN 0 THEN 'NaN'::numeric ELSE g * 1.000001 END, g / 100.0,
  CASE g % 4 WHEN 0 THEN E'tab\there\nnew line\\back' WHEN 1 THEN '' WHEN 2 THEN NULL ELSE 'ünïcødé ✓ ' || g END,
  left('v' || g, 10), CASE WHEN g % 10 = 0 THEN (SELECT string_agg(set_byte('\x00'::bytea, 0, x), ''::bytea) FROM generate_series(0,255) x) ELSE int4send(g) END,
  CASE WHEN g % 7 = 0 THEN '[0:1]={1,2}'::int[] ELSE ARRAY[g, NULL, -g] END, ARRAY['a,b', 'c"d', NULL],
  (ARRAY['sad','ok','happy'])[g % 3 + 1]::mood, g, ROW(g, 'x y')::pair, int4range(g, g + 10),
  '{"k": [1, 2.50, "x"]}', jsonb_build_object('id', g, 'n', NULL), md5(g::text)::uuid, '10.0.0.1/8', '10.0.0.0/8',
  make_interval(0, 0, 0, g, 0, 0, 0.5), CASE g % 9 WHEN 0 THEN 'infinity' WHEN 1 THEN '-infinity' ELSE '2024-02-29 12:00:00.123456+05' END::timestamptz,
  '2024-01-01'::date + g, B'1010', B'10101', to_tsvector('simple', 'the quick fox ' || g), 'mc' || g
FROM generate_series(1, 1200) g;
CREATE TABLE public.small (k text PRIMARY KEY, v int);
INSERT INTO public.small SELECT 'k' || g, g FROM generate_series(1, 10) g;
CREATE TABLE public.empty (x int);
`

var typesTables = []srcTable{
	{name: "Sales Dept.Order Lines", split: "id", bounds: []int{300, 600, 900}},
	{name: "public.small"},
	{name: "public.empty"},
}

// sameRows compares the full contents of the test tables.
func sameRows(t *testing.T, src, dst string) {
	t.Helper()
	for _, tb := range []string{`"Sales Dept"."Order Lines"`, "public.small", "public.empty"} {
		pgtest.RequireSameTable(t, src, dst, tb)
	}
}

func TestRoundTrip(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, typesDDL(src))
	dst.Exec(t, typesDDL(dst)+`TRUNCATE "Sales Dept"."Order Lines", public.small;`)
	in := streamBytes(t, src.URL, typesTables, 3)
	if err, stderr := load(t, dst.URL, in, Config{Jobs: 2}); err != nil {
		t.Fatalf("load: %v\n%s", err, stderr)
	}
	sameRows(t, src.URL, dst.URL)
	if got, want := queryInt(t, dst.URL, "SELECT count(*) FROM pgferry.copy_chunks"), int64(6); got != want {
		t.Errorf("copy_chunks holds %d rows, want %d", got, want)
	}
	if got := queryInt(t, dst.URL, "SELECT count(*) FROM pgferry.copy_plan"); got != 6 {
		t.Errorf("copy_plan holds %d rows, want 6", got)
	}
	// A second run loads nothing and changes nothing.
	if err, stderr := load(t, dst.URL, in, Config{}); err != nil {
		t.Fatalf("second load: %v\n%s", err, stderr)
	} else if !strings.Contains(stderr, "6 of 6 chunks already loaded") {
		t.Errorf("second run stderr: %q", stderr)
	}
	sameRows(t, src.URL, dst.URL)
}

func TestColumnOrderDiffers(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, `CREATE TABLE t (id int PRIMARY KEY, "A b" text, c numeric, d timestamptz);
		INSERT INTO t SELECT g, 'x' || g, g * 1.5, '2020-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 500) g;`)
	dst.Exec(t, `CREATE TABLE t (d timestamptz, c numeric, extra text DEFAULT 'dflt', "A b" text, id int PRIMARY KEY)`)
	in := streamBytes(t, src.URL, []srcTable{{name: "public.t", split: "id", bounds: []int{250}}}, 2)
	if err, stderr := load(t, dst.URL, in, Config{}); err != nil {
		t.Fatalf("load: %v\n%s", err, stderr)
	}
	for _, cols := range [][]string{{"id", `"A b"`, "c", "d"}} {
		a := pgtest.TableDump(t, src.URL, "t", cols)
		b := pgtest.TableDump(t, dst.URL, "t", cols)
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Fatalf("contents differ: %d vs %d rows", len(a), len(b))
		}
	}
	if got := queryInt(t, dst.URL, "SELECT count(*) FROM t WHERE extra = 'dflt'"); got != 500 {
		t.Errorf("extra column default on %d rows, want 500", got)
	}
}

// damage returns the stream with one byte flipped inside the first data frame of the chunk.
func damage(t *testing.T, in []byte, table string, chunk int) []byte {
	t.Helper()
	r, err := stream.NewReader(bytesReader(in))
	if err != nil {
		t.Fatal(err)
	}
	off := r.Offset()
	for {
		f, err := r.Next()
		if err != nil {
			t.Fatalf("chunk %s %d not found: %v", table, chunk, err)
		}
		if f.Kind == stream.KindData && f.Name == table && f.Chunk == chunk {
			out := append([]byte(nil), in...)
			out[off+32+10] ^= 0x40 // inside the payload, past the 32-byte frame header
			return out
		}
		off = r.Offset()
	}
}

// requireChunksConsistent checks the target holds exactly the rows of the chunks copy_chunks
// records (here: rows of chunk i have id in its range), and none of chunk bad.
func requireChunksConsistent(t *testing.T, src, dst *pgtest.DB, bounds []int, bad int) {
	t.Helper()
	rows := queryInt(t, dst.URL, `SELECT count(*) FROM "Sales Dept"."Order Lines"`)
	recorded := queryInt(t, dst.URL, `SELECT coalesce(sum(rows), 0) FROM pgferry.copy_chunks WHERE table_name = 'Sales Dept.Order Lines'`)
	if rows != recorded {
		t.Errorf("target holds %d rows, copy_chunks records %d", rows, recorded)
	}
	lo, hi := 0, 1<<30
	if bad > 0 {
		lo = bounds[bad-1]
	}
	if bad < len(bounds) {
		hi = bounds[bad]
	}
	if n := queryInt(t, dst.URL, `SELECT count(*) FROM "Sales Dept"."Order Lines" WHERE id >= `+itoa(lo)+` AND id < `+itoa(hi)); n != 0 {
		t.Errorf("%d rows of the damaged chunk %d were committed", n, bad)
	}
	if n := queryInt(t, dst.URL, `SELECT count(*) FROM pgferry.copy_chunks WHERE table_name = 'Sales Dept.Order Lines' AND chunk = `+itoa(bad)); n != 0 {
		t.Errorf("damaged chunk %d recorded as done", bad)
	}
}

func itoa(i int) string { return fmtInt(i) }

func TestCorruptByteRejected(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, typesDDL(src))
	dst.Exec(t, typesDDL(dst)+`TRUNCATE "Sales Dept"."Order Lines", public.small;`)
	in := streamBytes(t, src.URL, typesTables, 3)
	bad := damage(t, in, "Sales Dept.Order Lines", 2)
	err, stderr := load(t, dst.URL, bad, Config{})
	if !errors.Is(err, stream.ErrCorrupt) {
		t.Fatalf("got %v, want a corrupt stream error\n%s", err, stderr)
	}
	if code := cliutil.Report(new(strings.Builder), "pgcopyin", err); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(stderr, "table Sales Dept.Order Lines chunk 2") {
		t.Errorf("message does not name the table and chunk: %s", stderr)
	}
	requireChunksConsistent(t, src, dst, typesTables[0].bounds, 2)
	// The good stream then completes the load: no duplicates, no gaps.
	if err, stderr := load(t, dst.URL, in, Config{}); err != nil {
		t.Fatalf("reload: %v\n%s", err, stderr)
	}
	sameRows(t, src.URL, dst.URL)
}

func TestTruncatedRejected(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, typesDDL(src))
	dst.Exec(t, typesDDL(dst)+`TRUNCATE "Sales Dept"."Order Lines", public.small;`)
	in := streamBytes(t, src.URL, typesTables, 1) // one chunk at a time: the cut falls inside one
	// Cut in the middle of chunk 1's data.
	r, _ := stream.NewReader(bytesReader(in))
	var cut int64
	for {
		f, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if f.Chunk == 1 && f.Seq == 3 {
			cut = r.Offset() - 100
			break
		}
	}
	err, stderr := load(t, dst.URL, in[:cut], Config{})
	if !errors.Is(err, stream.ErrTruncated) {
		t.Fatalf("got %v, want a truncated stream error\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "table Sales Dept.Order Lines chunk 1") || !strings.Contains(stderr, "re-run") {
		t.Errorf("message: %s", stderr)
	}
	requireChunksConsistent(t, src, dst, typesTables[0].bounds, 1)
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM pgferry.copy_chunks"); n != 1 {
		t.Errorf("%d chunks recorded, want 1 (chunk 0)", n)
	}
	// Cut just before the end frame: every chunk is complete and kept, but the run fails.
	dst2 := pgtest.Target(t)
	dst2.Exec(t, typesDDL(dst2)+`TRUNCATE "Sales Dept"."Order Lines", public.small;`)
	err, _ = load(t, dst2.URL, in[:len(in)-20], Config{})
	if !errors.Is(err, stream.ErrTruncated) {
		t.Fatalf("cut before end frame: got %v", err)
	}
}

func TestWrongMagicAndVersion(t *testing.T) {
	dst := pgtest.Target(t)
	err, stderr := load(t, dst.URL, []byte("1\tfoo\n2\tbar\n"), Config{})
	if !errors.Is(err, stream.ErrBadMagic) || !strings.Contains(stderr, "hint: pgcopyin reads the output of pgcopyout") {
		t.Errorf("COPY text as input: %v\n%s", err, stderr)
	}
	err, stderr = load(t, dst.URL, nil, Config{})
	if !errors.Is(err, stream.ErrTruncated) || !strings.Contains(stderr, "stdin was empty") {
		t.Errorf("empty input: %v\n%s", err, stderr)
	}
	in := []byte("PGFCOPY\x07xxxxxxxxxxxxxxxxx")
	err, stderr = load(t, dst.URL, in, Config{})
	if !errors.Is(err, stream.ErrVersion) || !strings.Contains(stderr, "version 7") {
		t.Errorf("version 7: %v\n%s", err, stderr)
	}
}

func TestSchemaDrift(t *testing.T) {
	src := pgtest.Source(t)
	src.Exec(t, `CREATE TABLE a (id int PRIMARY KEY, v text, w int); INSERT INTO a SELECT g, 'x', g FROM generate_series(1,100) g;
		CREATE TABLE b (id int); INSERT INTO b VALUES (1);`)
	tables := []srcTable{{name: "public.a", split: "id", bounds: []int{50}}, {name: "public.b"}}
	in := streamBytes(t, src.URL, tables, 2)

	dst := pgtest.Target(t)
	dst.Exec(t, `CREATE TABLE a (id int PRIMARY KEY, v text, w int)`)
	err, stderr := load(t, dst.URL, in, Config{})
	if err == nil || !strings.Contains(stderr, "table public.b does not exist on the target") {
		t.Errorf("missing table: %v\n%s", err, stderr)
	}
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM a"); n != 0 {
		t.Errorf("%d rows committed despite the missing table", n)
	}

	dst2 := pgtest.Target(t)
	dst2.Exec(t, `CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int)`)
	err, stderr = load(t, dst2.URL, in, Config{})
	if err == nil || !strings.Contains(stderr, `table public.a: column "w" does not exist on the target`) {
		t.Errorf("missing column: %v\n%s", err, stderr)
	}
	if code := cliutil.Report(new(strings.Builder), "pgcopyin", err); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if n := queryInt(t, dst2.URL, "SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)"); n != 0 {
		t.Errorf("%d rows committed despite the missing column", n)
	}
}

func TestNonEmptyTarget(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, `CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a SELECT g, 'x' || g FROM generate_series(1,300) g;`)
	dst.Exec(t, `CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'stale'), (1000, 'other');`)
	in := streamBytes(t, src.URL, []srcTable{{name: "public.a", split: "id", bounds: []int{100, 200}}}, 2)
	err, stderr := load(t, dst.URL, in, Config{})
	if err == nil || !strings.Contains(stderr, "table public.a on the target already holds rows") || !strings.Contains(stderr, "--truncate") {
		t.Fatalf("non-empty target: %v\n%s", err, stderr)
	}
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM a"); n != 2 {
		t.Errorf("target changed: %d rows", n)
	}
	if err, stderr := load(t, dst.URL, in, Config{Truncate: true}); err != nil {
		t.Fatalf("--truncate: %v\n%s", err, stderr)
	}
	pgtest.RequireSameTable(t, src.URL, dst.URL, "a")
}

func TestPlanConflict(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, `CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1,300);`)
	dst.Exec(t, `CREATE TABLE a (id int PRIMARY KEY)`)
	in := streamBytes(t, src.URL, []srcTable{{name: "public.a", split: "id", bounds: []int{100, 200}}}, 2)
	if err, stderr := load(t, dst.URL, in, Config{}); err != nil {
		t.Fatalf("load: %v\n%s", err, stderr)
	}
	other := streamBytes(t, src.URL, []srcTable{{name: "public.a", split: "id", bounds: []int{150}}}, 2)
	err, stderr := load(t, dst.URL, other, Config{})
	if err == nil || !strings.Contains(stderr, "plan differs") || !strings.Contains(stderr, "hint:") {
		t.Fatalf("plan conflict: %v\n%s", err, stderr)
	}
	pgtest.RequireSameTable(t, src.URL, dst.URL, "a")
	if err, stderr := load(t, dst.URL, other, Config{Truncate: true}); err != nil {
		t.Fatalf("--truncate with a new plan: %v\n%s", err, stderr)
	}
	pgtest.RequireSameTable(t, src.URL, dst.URL, "a")
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM pgferry.copy_plan"); n != 2 {
		t.Errorf("copy_plan holds %d chunks, want the new plan's 2", n)
	}
}
