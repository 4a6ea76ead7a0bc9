package e2e

import (
	"fmt"
	"strings"
)

// The real-world database of TestRealDatabase: everything issue 13 lists at once, built as the
// application's owner role (no superuser) on the source.

// longTable and longColumn are 63-byte names (the most PostgreSQL keeps), with non-ASCII bytes.
var (
	longTable  = pad63("lög_ëntries_without_a_key_")
	longColumn = pad63("çolumn_")
)

// pad63 pads s with 'x' to 63 bytes.
func pad63(s string) string { return s + strings.Repeat("x", 63-len(s)) }

// qi quotes an identifier.
func qi(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// realSchema builds the source database. major is the source's major version (generated
// columns exist from 12, numeric infinity from 14); exts names the extensions installed
// (citext, pgcrypto) that the schema may use.
func realSchema(major int, exts map[string]bool) string {
	var b strings.Builder
	b.WriteString(`
CREATE TYPE public.mood AS ENUM ('ok', 'sad', 'ünïcode mood');
CREATE DOMAIN public.positive AS int CHECK (VALUE > 0);
CREATE SEQUENCE public.zoo_seq START 1000 INCREMENT 7;

-- keyless: small (whole-row capture), big (an index to find changed rows), duplicates
CREATE TABLE public.klog_small (seq int, note text, v float8);
INSERT INTO public.klog_small SELECT g % 300, CASE WHEN g % 9 = 0 THEN NULL ELSE repeat('n', g % 40) END, g / 3.0 FROM generate_series(1, 3000) g;
INSERT INTO public.klog_small VALUES (NULL, NULL, NULL), (NULL, NULL, NULL);
CREATE TABLE public.klog_big (g int NOT NULL, note text, at timestamptz NOT NULL DEFAULT '2026-01-01 00:00+00');
INSERT INTO public.klog_big SELECT g, 'row ' || (g % 1000), '2026-01-01 00:00+00'::timestamptz + g * interval '1 second' FROM generate_series(1, 200000) g;
CREATE INDEX klog_big_g ON public.klog_big (g);
CREATE TABLE public.dups (a int, b text);
INSERT INTO public.dups SELECT g % 10, 'dup ' || (g % 10) FROM generate_series(1, 500) g;
INSERT INTO public.dups VALUES (NULL, NULL), (NULL, NULL), (NULL, NULL);
CREATE VIEW public.klog_recent AS SELECT seq, note FROM public.klog_small WHERE seq > 100;
CREATE FUNCTION public.first_klog() RETURNS public.klog_small LANGUAGE sql STABLE AS 'SELECT * FROM public.klog_small ORDER BY seq LIMIT 1';

-- FORCE ROW LEVEL SECURITY: the application's role sees tenant 1 only
CREATE TABLE public.rls_docs (id int PRIMARY KEY, tenant int NOT NULL, body text);
INSERT INTO public.rls_docs SELECT g, g % 3, 'doc ' || g FROM generate_series(1, 600) g;
ALTER TABLE public.rls_docs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.rls_docs FORCE ROW LEVEL SECURITY;

-- a unique index with INCLUDE columns is the only key
CREATE TABLE public.incl (a int NOT NULL, b text NOT NULL, payload text, extra int);
INSERT INTO public.incl SELECT g, 'b' || (g % 7), 'p' || g, g FROM generate_series(1, 2000) g;
CREATE UNIQUE INDEX incl_key ON public.incl (a, b) INCLUDE (payload);

-- partitions, and materialized views over them (one with a unique index, one over the other)
CREATE TABLE public.measurements (id bigint NOT NULL, at date NOT NULL, v numeric, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.measurements_2025 PARTITION OF public.measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.measurements_2026 PARTITION OF public.measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE public.measurements_other PARTITION OF public.measurements DEFAULT;
INSERT INTO public.measurements SELECT g, date '2025-06-01' + (g % 400), g * 1.5 FROM generate_series(1, 5000) g;
CREATE MATERIALIZED VIEW public.mv_part_daily AS SELECT at, count(*) AS n, sum(v) AS s FROM public.measurements GROUP BY at;
CREATE UNIQUE INDEX mv_part_daily_at ON public.mv_part_daily (at);
CREATE MATERIALIZED VIEW public.mv_dep AS SELECT count(*) AS days, sum(n) AS total FROM public.mv_part_daily;

-- reg* columns
CREATE TABLE public.objrefs (id int PRIMARY KEY, rel regclass, typ regtype, fn regproc, fnargs regprocedure,
  op regoperator, ns regnamespace, cfg regconfig, rels regclass[]);
INSERT INTO public.objrefs VALUES
  (1, 'public.rls_docs', 'public.mood', 'public.first_klog', 'public.first_klog()', '+(integer,integer)', 'public', 'english', '{public.klog_small,public.dups}'),
  (2, 'public.measurements', 'public.mood[]', 'int4pl', 'lower(text)', '||(text,text)', 'pg_catalog', 'simple', '{}');
`)
	b.WriteString(hostileSchema)
	b.WriteString(typeZoo(major, exts))
	b.WriteString(wideTable(1600))
	b.WriteString("\nANALYZE;\n")
	return b.String()
}

// hostileSchema: reserved words, mixed case, spaces, quotes, non-ASCII, 63-byte names, and
// columns named like the tools' own aliases and delta columns, keyed and keyless.
var hostileSchema = fmt.Sprintf(`
CREATE SCHEMA "My ""Schema""";
CREATE TABLE "My ""Schema"""."select" ("b" int PRIMARY KEY, "k" text, "t" text, "txid" bigint, "op" text,
  "Mixed Case" text, "quo""te" text, "ünï" text, "s" int, "x" int, "d" int, %[2]s text);
INSERT INTO "My ""Schema"""."select" SELECT g, 'k' || g, 't' || g, g, 'op', 'MC ' || g, 'q"' || g, 'ü' || g, g, g, g, 'long ' || g FROM generate_series(1, 400) g;
CREATE TABLE public.%[1]s ("i" int NOT NULL, "n" int, "r" text, "m" text, "g" int, "w" text, "order" int);
INSERT INTO public.%[1]s SELECT g %% 100, g, 'r' || g, 'm', g, E'tab\there', g FROM generate_series(1, 1000) g;
CREATE INDEX ON public.%[1]s ("i");
`, qi(longTable), qi(longColumn))

// typeZoo is a keyed table of many types with edge values, an identity, a sequence default and
// (12+) a generated column.
func typeZoo(major int, exts map[string]bool) string {
	cols := []string{
		"id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
		"seqv bigint NOT NULL DEFAULT nextval('public.zoo_seq')",
		"arr int[]", "tarr text[]", "j json", "jb jsonb", "num numeric", "f8 float8", "f4 real", "by bytea",
		"ts timestamp", "tstz timestamptz", "ttz timetz", "iv interval", "md public.mood", "pos public.positive",
		"u uuid", "ip inet", "rng int4range",
	}
	if major >= 12 {
		cols = append(cols, "gen text GENERATED ALWAYS AS (coalesce(num::text, 'none') || '/' || coalesce(array_length(arr, 1), 0)::text) STORED")
	}
	if exts["citext"] {
		cols = append(cols, "ci public.citext")
	}
	numInf := "'NaN'"
	if major >= 14 {
		numInf = "'Infinity'"
	}
	uuid := "'00000000-0000-0000-0000-000000000000'"
	if major >= 13 || exts["pgcrypto"] {
		uuid = "gen_random_uuid()" // core from 13, pgcrypto before
	}
	ci := ""
	if exts["citext"] {
		ci = ", ci"
	}
	ciVal := func(v string) string {
		if exts["citext"] {
			return ", " + v
		}
		return ""
	}
	return fmt.Sprintf(`
CREATE TABLE public.typezoo (%s);
INSERT INTO public.typezoo (arr, tarr, j, jb, num, f8, f4, by, ts, tstz, ttz, iv, md, pos, u, ip, rng%[2]s) VALUES
 ('{1,NULL,3}', '{"a b","c,d","e\"f",NULL}', '{"k": "v\u00e9", "n": [1, 2.50]}', '{"z": 1, "a": [true, null]}', 'NaN', 'NaN', '-0', '\x00ff10', 'infinity', '-infinity', '23:59:59.999999+14', '-1 day 02:03:04', 'ok', 1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '::1', '[1,10)'%[3]s),
 ('{}', '{}', 'null', '"just a string"', %[4]s, 'Infinity', '-Infinity', '', '0001-01-01 00:00:00 BC', '2026-03-29 01:30:00+01', '00:00:00-12', '1 year 2 mons', 'ünïcode mood', 2147483647, NULL, '10.1.2.0/24', 'empty'%[5]s),
 (NULL, '{"tab\there","new\nline","back\\slash"}', '[]', '{}', '-0.000000000000000000001', '-0', '1e-38', '\x5c0a0d09', '2026-07-01 12:00:00.123456', '2026-07-01 12:00:00.123456+05:45', NULL, '0', NULL, NULL, NULL, NULL, NULL%[6]s),
 ('{{1,2},{3,4}}', '{ü,ß}', '{"deep": {"deeper": [[1]]}}', '[1, "two", {"3": 4}]', '12345678901234567890.123456789012345678901', '1.7976931348623157e308', '3.4028235e38', decode(repeat('ab', 1000), 'hex'), '1999-12-31 23:59:59', '1970-01-01 00:00:00+00', '12:00+05:30', '-1000000 years', 'sad', 7, %[8]s, '2001:db8::/32', '(,5]'%[7]s);
`, strings.Join(cols, ",\n  "), ci, ciVal("'MiXeD'"), numInf, ciVal("'ÜNÏ'"), ciVal("NULL"), ciVal("'x'"), uuid)
}

// wideTable is a keyed table of n columns (PostgreSQL's most is 1,600) holding a few rows.
func wideTable(n int) string {
	cols := []string{"id int PRIMARY KEY"}
	for i := 1; i < n; i++ {
		cols = append(cols, fmt.Sprintf("c%d int", i))
	}
	return fmt.Sprintf(`
CREATE TABLE public.wide (%s);
INSERT INTO public.wide (id, c1, c800, c1599) SELECT g, g, g * 2, g * 3 FROM generate_series(1, 40) g;
`, strings.Join(cols, ", "))
}

// realGrants lets the application role app write every table (it is not the owner), and the
// policy on rls_docs shows it tenant 1 only.
func realGrants(app string) string {
	return fmt.Sprintf(`
GRANT USAGE ON SCHEMA "My ""Schema""" TO %[1]s;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, "My ""Schema""" TO %[1]s;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %[1]s;
CREATE POLICY app_tenant ON public.rls_docs TO %[1]s USING (tenant = 1) WITH CHECK (true);
`, qi(app))
}
