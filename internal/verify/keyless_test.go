package verify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// keylessDDL is a table without a key (plain and partitioned) holding duplicates, NULLs, a float
// and a json column (no equality operator).
const keylessDDL = `
CREATE TABLE log(a int, b text, f float8, j json);
CREATE TABLE plog(a int, b text) PARTITION BY RANGE (a);
CREATE TABLE plog_1 PARTITION OF plog FOR VALUES FROM (MINVALUE) TO (1000);
CREATE TABLE plog_2 PARTITION OF plog FOR VALUES FROM (1000) TO (MAXVALUE);
`

// keylessRows fills log with 2000 distinct rows plus copies, in the order given by dir.
func keylessRows(dir string) string {
	return fmt.Sprintf(`INSERT INTO log SELECT g, 'r' || g, g / 3.0, ('{"g": ' || g || '}')::json FROM generate_series(1, 2000) g ORDER BY g %s;
INSERT INTO plog SELECT g, 'p' || g FROM generate_series(1, 2000) g ORDER BY g %s`, dir, dir)
}

// diffSummary lists a keyless result's diffs as "kind count a,b".
func diffSummary(r *Result, cols ...string) []string {
	var out []string
	for _, d := range r.Diffs {
		var vals []string
		for _, c := range cols {
			v := "NULL"
			if p := d.Row[c]; p != nil {
				v = *p
			}
			vals = append(vals, v)
		}
		out = append(out, fmt.Sprintf("%s %d %s", d.Kind, d.Count, strings.Join(vals, ",")))
	}
	sort.Strings(out)
	return out
}

// TestKeylessMultiset: a table without a key is compared as a multiset of rows, with every hash
// and split into chunks: the same rows in another order (copies included) are the same (exit 0),
// and rows held more often by one side are named by their values with the number of copies.
func TestKeylessMultiset(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, keylessDDL+keylessRows("ASC")+`;
INSERT INTO log VALUES (1, 'r1', 1 / 3.0, '{"g": 1}'), (1, 'r1', 1 / 3.0, '{"g": 1}'), (3, NULL, NULL, NULL), (3, NULL, NULL, NULL);
INSERT INTO plog VALUES (1500, 'p1500'), (5, 'p5')`)
	dst.Exec(t, keylessDDL+keylessRows("DESC")+`;
INSERT INTO log VALUES (3, NULL, NULL, NULL), (3, NULL, NULL, NULL), (1, 'r1', 1 / 3.0, '{"g": 1}'), (1, 'r1', 1 / 3.0, '{"g": 1}');
INSERT INTO plog VALUES (5, 'p5'), (1500, 'p1500')`)
	cases := []Config{{}, {HashFunc: "md5"}, {HashFunc: "client"}, {ChunkRows: 100, Jobs: 3}, {ChunkRows: 100, Jobs: 3, HashFunc: "client"}}
	for _, cfg := range cases {
		cfg.SourceURL, cfg.TargetURL = src.URL, dst.URL
		if code, rs, _ := run(t, cfg); code != ExitSame {
			t.Fatalf("--hash %q, %d rows per chunk: same multiset in another order: exit %d %+v", cfg.HashFunc, cfg.ChunkRows, code, rs)
		}
	}
	// log: (1, r1) twice missing, (3, NULL) once extra, a new row extra, row 7 changed (one
	// missing, one extra). plog: (1500) once missing, (5) once extra on another partition.
	dst.Exec(t, `DELETE FROM log WHERE ctid IN (SELECT ctid FROM log WHERE a = 1 LIMIT 2);
INSERT INTO log VALUES (3, NULL, NULL, NULL), (9999, 'tab	and "quote"', 'NaN', '{ "spaced": 1 }');
UPDATE log SET j = '{"g":7}' WHERE a = 7;
DELETE FROM plog_2 WHERE ctid = (SELECT ctid FROM plog_2 WHERE a = 1500 LIMIT 1); INSERT INTO plog VALUES (5, 'p5')`)
	wantLog := []string{"extra 1 3,NULL", "extra 1 7,{\"g\":7}", "extra 1 9999,{ \"spaced\": 1 }", "missing 2 1,{\"g\": 1}", "missing 1 7,{\"g\": 7}"}
	sort.Strings(wantLog)
	wantPlog := []string{"extra 1 5,p5", "missing 1 1500,p1500"}
	for _, cfg := range cases {
		cfg.SourceURL, cfg.TargetURL = src.URL, dst.URL
		code, rs, _ := run(t, cfg)
		m := byTable(rs)
		name := fmt.Sprintf("--hash %q, %d rows per chunk", cfg.HashFunc, cfg.ChunkRows)
		if code != ExitDiffer {
			t.Fatalf("%s: exit %d, want 1", name, code)
		}
		if got := diffSummary(m["public.log"], "a", "j"); fmt.Sprint(got) != fmt.Sprint(wantLog) {
			t.Errorf("%s: log diffs\n%v\nwant\n%v", name, got, wantLog)
		}
		if got := diffSummary(m["public.plog"], "a", "b"); fmt.Sprint(got) != fmt.Sprint(wantPlog) {
			t.Errorf("%s: plog diffs %v, want %v", name, got, wantPlog)
		}
		if r := m["public.log"]; r.Missing != 3 || r.Extra != 3 || *r.SourceRows != 2004 || *r.TargetRows != 2004 {
			t.Errorf("%s: log counts %+v", name, r)
		}
	}
	// The report names the rows by their values, quoting where needed.
	var out bytes.Buffer
	cfg := Config{SourceURL: src.URL, TargetURL: dst.URL, Mode: "hash", Jobs: 2, MaxDiffs: 1000, HashFunc: "auto", SkipSchemas: []string{"pgferry"}, Filter: filterTables("log")}
	if code, err := Run(context.Background(), cfg, &out, nil, io.Discard); code != ExitDiffer || err != nil {
		t.Fatalf("exit %d, %v", code, err)
	}
	for _, want := range []string{
		`public.log: missing 2 x \(1, r1, 0\.33333333333333\d*, "\{\\"g\\": 1\}"\)`, // 11 prints more digits
		`public.log: extra 1 x \(3, NULL, NULL, NULL\)`,
		`public.log: extra 1 x \(9999, "tab\\tand \\"quote\\"", NaN, "\{ \\"spaced\\": 1 \}"\)`,
		`3 rows missing, 3 extra`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("report does not match %s:\n%s", want, out.String())
		}
	}
	// --max-diffs caps the rows named.
	code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, MaxDiffs: 2, Filter: filterTables("log")})
	if r := byTable(rs)["public.log"]; code != ExitDiffer || len(r.Diffs) != 2 || !r.Truncated {
		t.Errorf("--max-diffs 2: exit %d %+v", code, r)
	}
}

// TestKeylessBigTable: a keyless table big enough for many buckets, with many rows held once per
// side, two copies of one value on one side and one difference; exactly it is found.
func TestKeylessBigTable(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := "CREATE TABLE big(a int, b text); INSERT INTO big SELECT g % 50000, 'v' || (g % 7) FROM generate_series(1, 100000) g; ANALYZE big;"
	src.Exec(t, ddl)
	dst.Exec(t, ddl+"UPDATE big SET b = 'w' WHERE ctid = (SELECT ctid FROM big WHERE a = 4242 LIMIT 1)")
	for _, hash := range []string{"auto", "client"} {
		code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, HashFunc: hash})
		r := byTable(rs)["public.big"]
		got := diffSummary(r, "a", "b")
		if code != ExitDiffer || len(got) != 2 || !strings.HasPrefix(got[0], "extra 1 4242,w") || !strings.HasPrefix(got[1], "missing 1 4242,v") {
			t.Errorf("--hash %s: exit %d %v", hash, code, got)
		}
	}
	ctx := context.Background()
	s, err := openSide(ctx, src.URL, "source", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	pairs, err := listPairs(ctx, s.exporter, s.exporter, Config{SkipSchemas: []string{"pgferry"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := bucketCount(pairs[0].EstRows); !pairs[0].NoKey || n < 1024 {
		t.Errorf("big: keyless %v, %d buckets: want row-hash buckets, not one", pairs[0].NoKey, n)
	}
}

// TestKeylessRecheck: a keyless difference that converges during the pause is dropped, one that
// stays is reported with its count.
func TestKeylessRecheck(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := "CREATE TABLE k(a int, b text);"
	src.Exec(t, ddl+"INSERT INTO k SELECT g % 10, 'x' FROM generate_series(1, 100) g")
	dst.Exec(t, ddl+"INSERT INTO k SELECT g % 10, 'x' FROM generate_series(1, 100) g; DELETE FROM k WHERE a IN (1, 2)")
	go func() {
		time.Sleep(300 * time.Millisecond)
		dst.Cluster.Exec(context.Background(), dst.Name, "INSERT INTO k SELECT 1, 'x' FROM generate_series(1, 10)")
	}()
	code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, Recheck: 2 * time.Second})
	r := byTable(rs)["public.k"]
	if got := diffSummary(r, "a"); code != ExitDiffer || !r.Rechecked || fmt.Sprint(got) != "[missing 10 2]" {
		t.Fatalf("exit %d, %v %+v", code, got, r)
	}
}

// TestKeylessEmitFixRepairs: --emit-fix writes, for each differing row of a keyless table, a
// rows record with the source's count; pgdelta's applier executes them and the target is then
// the same multiset (hostile values, NULLs, json and floats included); applying again changes
// nothing.
func TestKeylessEmitFixRepairs(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, keylessDDL+keylessRows("ASC")+`;
INSERT INTO log VALUES (1, 'r1', 1 / 3.0, '{"g": 1}'), (3, NULL, NULL, NULL), (3, NULL, NULL, NULL), (5, E'tab\there "q" \\', 'NaN', '{ "a" : 1 }')`)
	dst.Exec(t, keylessDDL+keylessRows("DESC")+`;
INSERT INTO log VALUES (3, NULL, NULL, NULL), (3, NULL, NULL, NULL), (3, NULL, NULL, NULL), (8, 'only target', 0.1, '[]');
DELETE FROM plog_2 WHERE a = 1999; INSERT INTO plog VALUES (5, 'p5')`)
	var fix bytes.Buffer
	cfg := Config{SourceURL: src.URL, TargetURL: dst.URL, Mode: "hash", Jobs: 2, MaxDiffs: 100, HashFunc: "auto", EmitFix: true, SkipSchemas: []string{"pgferry"}, StateSchema: "pgferry"}
	if code, err := Run(context.Background(), cfg, io.Discard, &fix, io.Discard); code != ExitDiffer || err != nil {
		t.Fatalf("exit %d, %v", code, err)
	}
	var rows []string
	for _, line := range strings.Split(strings.TrimSpace(fix.String()), "\n") {
		if strings.Contains(line, `"op":"rows"`) {
			rows = append(rows, line)
		}
	}
	// log: (1) one more, (3) down to 2, (5) one, (8) none; plog: (1999) one, (5) back to 1.
	if len(rows) != 6 || !strings.Contains(fix.String(), `"row":{"a":"8","b":"only target","f":"0.1","j":"[]"},"count":0`) {
		t.Fatalf("rows records:\n%s", fix.String())
	}
	for range 2 {
		applyRecords(t, dst.URL, fix.Bytes())
		for _, tbl := range []string{"public.log", "public.plog"} {
			pgtest.RequireSameTable(t, src.URL, dst.URL, tbl)
		}
	}
	if code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL}); code != ExitSame {
		t.Fatalf("after the fix: exit %d %+v", code, rs)
	}
}
