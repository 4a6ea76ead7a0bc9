package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const typesDDL = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TYPE pair AS (a int, b text);
CREATE SCHEMA "My Schema";
`

// typeCols are the columns of the all-types table with the value every row starts with.
var typeCols = [][2]string{
	{"i", "int"}, {"bi", "bigint"}, {"f8", "float8"}, {"f4", "real"}, {"num", "numeric"}, {"t", "text"},
	{"b", "bytea"}, {"arr", "int[]"}, {"e", "mood"}, {"d", "posint"}, {"comp", "pair"}, {"r", "int4range"},
	{"j", "json"}, {"jb", "jsonb"}, {"u", "uuid"}, {"ip", "inet"}, {"net", "cidr"}, {"iv", "interval"},
	{"ts", "timestamptz"}, {"bits", "bit(8)"}, {"vb", "varbit"}, {"tsv", "tsvector"}, {"tarr", "text[]"}, {"Mixed Case", "text"},
}

const typesInsert = `INSERT INTO "My Schema"."All Types" (id, i, bi, f8, f4, num, t, b, arr, e, d, comp, r, j, jb, u, ip, net, iv, ts, bits, vb, tsv, tarr, "Mixed Case")
SELECT g, 1, 9007199254740993, 0.1, 1.5, 1.5, CASE g WHEN 30 THEN 'x' WHEN 31 THEN 'y' ELSE E'h\u00e9llo\tworld' END, '\x00ff', '{1,2}', 'ok', 5, '(1,x)', '[1,5)',
  '{"a":1}', '{"a":1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '10.0.0.1', '10.0.0.0/8', '1 day', '2024-01-01 00:00:00+00', B'10101010', B'101',
  'a b', '{a,b}', 'same'
FROM generate_series(1, 40) g`

// typeChanges damage one row per value kind on the target: key -> (column, SQL assignment).
var typeChanges = []struct {
	id   int
	col  string
	set  string
	what string
}{
	{1, "i", "i = 2", "int"},
	{2, "bi", "bi = 9007199254740992", "bigint beyond float precision"},
	{3, "f8", "f8 = 0.10000000000000002", "float's last digit"},
	{4, "f4", "f4 = 1.5000001", "real's last digit"},
	{5, "num", "num = 'NaN'", "numeric NaN"},
	{6, "f8", "f8 = 'Infinity'", "float Infinity"},
	{7, "t", `t = E'h\u00e9llo\tworld '`, "trailing space"},
	{8, "t", `t = E'h\u00e9llo\tw\u00f6rld'`, "unicode"},
	{9, "b", `b = '\x00fe'`, "bytea"},
	{10, "arr", "arr = '{2,1}'", "array order"},
	{11, "e", "e = 'happy'", "enum"},
	{12, "d", "d = 6", "domain"},
	{13, "comp", "comp = '(1,y)'", "composite"},
	{14, "r", "r = '[1,6)'", "range"},
	{15, "j", `j = '{"a": 1}'`, "json whitespace"},
	{16, "jb", `jb = '{"a":2}'`, "jsonb"},
	{17, "u", "u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'", "uuid"},
	{18, "ip", "ip = '10.0.0.2'", "inet"},
	{19, "net", "net = '10.0.0.0/16'", "cidr"},
	{20, "iv", "iv = '24 hours'", "interval equal but differently stored"},
	{21, "ts", "ts = 'infinity'", "timestamptz infinity"},
	{22, "ts", "ts = '2024-01-01 00:00:00.000001+00'", "timestamptz microsecond"},
	{23, "bits", "bits = B'10101011'", "bit"},
	{24, "vb", "vb = B'1010'", "varbit"},
	{25, "tsv", "tsv = 'a c'", "tsvector"},
	{26, "t", "t = NULL", "NULL versus text"},
	{27, "tarr", `tarr = '{"a ",b}'`, "array element trailing space"},
	{28, "Mixed Case", `"Mixed Case" = ''`, "empty string versus text"},
	{29, "f8", "f8 = -0.1", "sign"},
	{32, "num", "num = 'Infinity'", "numeric Infinity"},
	{33, "f4", "f4 = 'NaN'", "real NaN"},
	{34, "num", "num = 1.50", "numeric scale"},
	{35, "arr", "arr = '{1,2,NULL}'", "array NULL element"},
}

// typesTable creates the all-types table with its columns in the given order.
func typesTable(t *testing.T, db *pgtest.DB, reverse bool) {
	cols := append([][2]string(nil), typeCols...)
	if reverse {
		sort.Slice(cols, func(i, j int) bool { return cols[i][0] > cols[j][0] })
	}
	var defs []string
	for _, c := range cols {
		defs = append(defs, fmt.Sprintf("%q %s", c[0], c[1]))
	}
	db.Exec(t, typesDDL+`CREATE TABLE "My Schema"."All Types" (`+strings.Join(defs, ", ")+`, id int PRIMARY KEY)`)
}

func run(t *testing.T, cfg Config) (int, []*Result, string) {
	t.Helper()
	var out, diag bytes.Buffer
	cfg.JSON = true
	if cfg.Mode == "" {
		cfg.Mode = "hash"
	}
	if cfg.Jobs == 0 {
		cfg.Jobs = 2
	}
	if cfg.MaxDiffs == 0 {
		cfg.MaxDiffs = 1000
	}
	if cfg.HashFunc == "" {
		cfg.HashFunc = "auto"
	}
	cfg.SkipSchemas = []string{"pgferry"}
	start := time.Now()
	code, err := Run(context.Background(), cfg, &out, io.Discard, &diag)
	t.Logf("run %s took %s", cfg.Mode, time.Since(start))
	if err != nil {
		t.Fatalf("run: %v (stderr %s)", err, diag.String())
	}
	var rs []*Result
	dec := json.NewDecoder(&out)
	for dec.More() {
		var r Result
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, &r)
	}
	return code, rs, diag.String()
}

func byTable(rs []*Result) map[string]*Result {
	m := map[string]*Result{}
	for _, r := range rs {
		m[r.Table] = r
	}
	return m
}

// TestHashFindsEveryKindOfDifference damages one row per type family and kind of difference
// and expects each to be found with its key and column, with both hash functions and with
// the table split into chunks.
func TestHashFindsEveryKindOfDifference(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	typesTable(t, src, false)
	typesTable(t, dst, true)
	src.Exec(t, typesInsert+"; INSERT INTO \"My Schema\".\"All Types\" (id, t) VALUES (100, 'only on source'); ANALYZE")
	// Physical order on the target differs: rows inserted in reverse.
	dst.Exec(t, strings.Replace(typesInsert, "generate_series(1, 40) g", "generate_series(40, 1, -1) g", 1)+
		"; INSERT INTO \"My Schema\".\"All Types\" (id, t) VALUES (101, 'only on target'); ANALYZE")
	var upd []string
	for _, c := range typeChanges {
		upd = append(upd, fmt.Sprintf(`UPDATE "My Schema"."All Types" SET %s WHERE id = %d`, c.set, c.id))
	}
	upd = append(upd, `UPDATE "My Schema"."All Types" SET t = CASE id WHEN 30 THEN 'y' ELSE 'x' END WHERE id IN (30, 31)`)
	dst.Exec(t, strings.Join(upd, ";\n"))

	want := map[string]string{"100": "missing", "101": "extra", "30": "changed t", "31": "changed t"}
	for _, c := range typeChanges {
		want[fmt.Sprint(c.id)] = "changed " + c.col
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"auto", Config{}},
		{"hashtextextended", Config{HashFunc: "hashtextextended"}},
		{"md5", Config{HashFunc: "md5"}},
		{"chunked", Config{ChunkRows: 5, Jobs: 3}},
		{"client", Config{HashFunc: "client"}},
		{"chunked-client", Config{ChunkRows: 5, Jobs: 3, HashFunc: "client"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.SourceURL, cfg.TargetURL = src.URL, dst.URL
			code, rs, _ := run(t, cfg)
			if code != ExitDiffer {
				t.Fatalf("exit %d, want %d", code, ExitDiffer)
			}
			r := byTable(rs)["My Schema.All Types"]
			if r == nil || r.Status != StatusDiffer {
				t.Fatalf("result %+v", r)
			}
			got := map[string]string{}
			for _, d := range r.Diffs {
				s := d.Kind
				if d.Kind == "changed" {
					s += " " + strings.Join(d.Columns, ",")
				}
				got[d.Key["id"]] = s
			}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("key %s: got %q, want %q", k, got[k], w)
				}
			}
			for k, g := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("key %s reported (%s) but is the same on both sides", k, g)
				}
			}
			if *r.SourceRows != 41 || *r.TargetRows != 41 || r.Missing != 1 || r.Extra != 1 || r.Changed != len(typeChanges)+2 {
				t.Errorf("counts: %+v", r)
			}
			if tc.name == "md5" && r.Hash != "md5" || tc.name == "auto" && r.Hash != "hashtextextended" || tc.name == "client" && r.Hash != "client" {
				t.Errorf("hash %q", r.Hash)
			}
		})
	}
}

// TestIdenticalIsClean: same rows in a different physical order and column order, a composite
// text key with quoting, a partitioned table and an inheritance parent all report clean.
func TestIdenticalIsClean(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	typesTable(t, src, false)
	typesTable(t, dst, true)
	src.Exec(t, typesInsert)
	dst.Exec(t, strings.Replace(typesInsert, "generate_series(1, 40) g", "generate_series(40, 1, -1) g", 1))
	common := `
CREATE TABLE ck(a text, b int, v text, PRIMARY KEY (a, b));
CREATE TABLE ev(id int, at date, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE ev_1 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE ev_2 PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE par(id int PRIMARY KEY, v text);
CREATE TABLE kid(extra text) INHERITS (par); ALTER TABLE kid ADD PRIMARY KEY (id);
CREATE SCHEMA pgferry; CREATE TABLE pgferry.junk(x int);`
	src.Exec(t, common+`
INSERT INTO ck SELECT 'k "' || g || E'\t,', g % 3, 'v' FROM generate_series(1, 200) g;
INSERT INTO ev SELECT g, date '2024-06-01' + g, 'e' FROM generate_series(1, 300) g;
INSERT INTO par VALUES (1, 'p'); INSERT INTO kid VALUES (2, 'k', 'x'); INSERT INTO pgferry.junk VALUES (1)`)
	dst.Exec(t, common+`
INSERT INTO ck SELECT 'k "' || g || E'\t,', g % 3, 'v' FROM generate_series(200, 1, -1) g;
INSERT INTO ev SELECT g, date '2024-06-01' + g, 'e' FROM generate_series(300, 1, -1) g;
INSERT INTO par VALUES (1, 'p'); INSERT INTO kid VALUES (2, 'k', 'x')`)
	code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, Jobs: 3, ChunkRows: 7})
	for _, r := range rs {
		if r.Status != StatusSame {
			t.Errorf("%s: %s %s %+v", r.Table, r.Status, r.Reason, r.Diffs)
		}
	}
	tables := byTable(rs)
	for _, name := range []string{"My Schema.All Types", "public.ck", "public.ev", "public.par", "public.kid"} {
		if tables[name] == nil {
			t.Errorf("%s not verified", name)
		}
	}
	if tables["public.ev_1"] != nil || tables["pgferry.junk"] != nil {
		t.Errorf("partitions or the pgferry schema were verified separately: %v", tables)
	}
	if r := tables["public.ev"]; r != nil && *r.SourceRows != 300 {
		t.Errorf("ev rows %d, want 300 (root covers the partitions)", *r.SourceRows)
	}
	if r := tables["public.par"]; r != nil && *r.SourceRows != 1 {
		t.Errorf("par rows %d, want 1 (ONLY the parent)", *r.SourceRows)
	}
	if code != ExitSame {
		t.Fatalf("exit %d, want 0", code)
	}
	// The same data under count and quick modes is clean too.
	for _, mode := range []string{"count", "quick"} {
		if code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, Mode: mode}); code != ExitSame {
			t.Errorf("mode %s: exit %d: %+v", mode, code, rs)
		}
	}
}
