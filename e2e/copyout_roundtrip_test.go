package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// typesDDL is created on both sides; typesData only on the source.
const typesDDL = `
CREATE SCHEMA "Odd Schema";
CREATE TYPE "Odd Schema".mood AS ENUM ('sad', 'ok', 'happy Ü');
CREATE DOMAIN "Odd Schema".posint AS int CHECK (VALUE > 0);
CREATE TYPE "Odd Schema".pair AS (a int, b text);
CREATE TABLE "Odd Schema"."All Types"(
  id int PRIMARY KEY,
  i2 smallint, i4 int, i8 bigint, f4 real, f8 double precision, num numeric, num2 numeric(12,3),
  t text, vc varchar(50), ch char(5), "Mixed Case Col" text,
  by bytea,
  ia int[], ta text[], ia2 int[][],
  mood "Odd Schema".mood, dom "Odd Schema".posint, comp "Odd Schema".pair,
  r int4range, tr tstzrange, nr numrange,
  j json, jb jsonb, u uuid, ip inet, net cidr, iv interval,
  ts timestamp, tstz timestamptz, d date, tm time, tmz timetz,
  b bit(8), vb varbit, tsv tsvector, bo boolean, mac macaddr, pt point, o oid,
  gen bigint GENERATED ALWAYS AS (i4::bigint * 2) STORED
);
CREATE TABLE "Odd Schema"."Events"(id int, "At" date NOT NULL, payload text, PRIMARY KEY (id, "At")) PARTITION BY RANGE ("At");
CREATE TABLE "Odd Schema"."Events 2024" PARTITION OF "Odd Schema"."Events" FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE "Odd Schema"."Events 2025" PARTITION OF "Odd Schema"."Events" FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE "Odd Schema"."Events other" PARTITION OF "Odd Schema"."Events" DEFAULT;
CREATE TABLE public.parent(id int PRIMARY KEY, v text);
CREATE TABLE public.child(extra text) INHERITS (public.parent);
CREATE TABLE public."no key"(a int, b text);
CREATE TABLE public.texty(k text PRIMARY KEY, v int);
CREATE TABLE public.uu(k uuid PRIMARY KEY, v int);
CREATE UNLOGGED TABLE public.ul(id int PRIMARY KEY);
`

const typesData = `
INSERT INTO "Odd Schema"."All Types" (id, i2, i4, i8, f4, f8, num, num2, t, vc, ch, "Mixed Case Col", by, ia, ta, ia2, mood, dom, comp,
  r, tr, nr, j, jb, u, ip, net, iv, ts, tstz, d, tm, tmz, b, vb, tsv, bo, mac, pt, o) VALUES
(1, -32768, -2147483648, -9223372036854775808, 'NaN', 'Infinity', 'NaN', -123456789.125,
 E'tab\there\nnewline\\backslash \r cr é 日本 🎉 \\N', '', 'ab', 'x',
 (SELECT string_agg(set_byte('\x00'::bytea, 0, b), ''::bytea ORDER BY b) FROM generate_series(0, 255) b),
 '[0:2]={1,2,3}', ARRAY['a b', 'c,d', NULL, '"q"', E'back\\slash', '', 'NULL'], '{{1,2},{3,4}}',
 'happy Ü', 1, ROW(1, E'x,y "z"\n')::"Odd Schema".pair, '[1,10)', '[2024-01-01 00:00:00+00,infinity)', '(,1.5]',
 '{"a": [1, 2.50, "x"],   "b": null}', '{"z": {"y": [true, false, null]}, "a": "é\\u0000x"}',
 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.1.1/24', '10.0.0.0/8', '1 year 2 mons 3 days 04:05:06.789',
 '-infinity', 'infinity', 'infinity', '24:00:00', '23:59:59.999999+14:59', B'10101010', B'1', 'a fat:1A cat''s & rat',
 true, '08:00:2b:01:02:03', '(1.5,-2)', 4294967295),
(2, 32767, 2147483647, 9223372036854775807, '-Infinity', '-0', 'Infinity', 0.001,
 '', NULL, NULL, NULL, '\x'::bytea, '{}', '{}', '[-5:-4][1:1]={{7},{8}}',
 'sad', 2147483647, ROW(NULL, NULL)::"Odd Schema".pair, 'empty', '(,)', 'empty',
 '[]', '[]', '00000000-0000-0000-0000-000000000000', '::1', '2001:db8::/32', '-178000000 years',
 '4713-01-01 00:00:00 BC', '294276-12-31 23:59:59.999999+00', '-infinity', '00:00:00', '00:00:00-15:59', B'00000000', B'', '',
 false, 'ff:ff:ff:ff:ff:ff', '(0,0)', 0),
(3, NULL, NULL, NULL, 1.17549435e-38, 2.2250738585072014e-308, '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'null', 'null', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(4, NULL, NULL, NULL, 3.4028235e+38, 1.7976931348623157e+308, 0.000000000000000000000000000001, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO "Odd Schema"."All Types" (id, i4, f8, num, t, by, ia, jb, u, tstz, iv, tsv, comp, mood)
SELECT i, i, i / 7.0, i / 3.0, repeat(E'\t\\' || i, i % 5), decode(md5(i::text), 'hex'), ARRAY[i, -i], jsonb_build_object('i', i),
  md5(i::text)::uuid, '2024-01-01'::timestamptz + i * interval '1.5 second', i * interval '1 minute', to_tsvector('simple', 'w' || i),
  ROW(i, 'p' || i)::"Odd Schema".pair, (ARRAY['sad','ok','happy Ü'])[1 + i % 3]::"Odd Schema".mood
FROM generate_series(5, 4000) i;
INSERT INTO "Odd Schema"."Events" SELECT i, '2023-06-01'::date + (i % 1000), 'e' || i FROM generate_series(1, 6000) i;
INSERT INTO public.parent SELECT i, 'p' || i FROM generate_series(1, 100) i;
INSERT INTO public.child SELECT i, 'c' || i, 'x' FROM generate_series(1000, 1050) i;
INSERT INTO public."no key" SELECT i % 100, repeat('n', i % 30) FROM generate_series(1, 8000) i;
INSERT INTO public."no key" VALUES (NULL, NULL), (NULL, NULL);
INSERT INTO public.texty SELECT md5(i::text) || E' \t é', i FROM generate_series(1, 5000) i;
INSERT INTO public.uu SELECT md5(i::text)::uuid, i FROM generate_series(1, 5000) i;
INSERT INTO public.ul SELECT generate_series(1, 100);
ANALYZE;
`

// TestCopyoutTypeRoundTrip pipes the real binaries: every common type, odd names, partitions,
// inheritance, a generated column, keyless and text/uuid-keyed tables split into chunks.
func TestCopyoutTypeRoundTrip(t *testing.T) {
	needTools(t, "pgcopyout", "pgcopyin")
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, typesDDL)
	src.Exec(t, typesData)
	dst.Exec(t, typesDDL)
	{
		sh := `pgcopyout --source "$SRC" -j 4 --one-off --split-size 32kB --progress none | pgcopyin --target "$DST" -j 4 --progress none`
		cmd := exec.Command("bash", "-o", "pipefail", "-c", sh)
		cmd.Env = append(cmd.Environ(), "SRC="+src.URL, "DST="+dst.URL)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", sh, err, stderr.String())
		}
		pgtest.RequireSameData(t, src.URL, dst.URL)
		// The split tables really were split, under the one snapshot the header records.
		var chunks, snaps int
		dstConn := connectURL(t, dst.URL)
		if err := dstConn.QueryRow(ctxb, `SELECT count(*), count(DISTINCT snapshot) FROM pgferry.copy_chunks WHERE table_name IN ('Odd Schema.All Types', 'public.no key', 'public.texty', 'public.uu')`).Scan(&chunks, &snaps); err != nil {
			t.Fatal(err)
		}
		if chunks < 8 || snaps != 1 {
			t.Fatalf("%d chunks under %d snapshots for the split tables; want several under one", chunks, snaps)
		}
		if strings.Contains(stderr.String(), "pgcopyout:") {
			t.Errorf("unexpected diagnostics: %s", stderr.String())
		}
	}
}
