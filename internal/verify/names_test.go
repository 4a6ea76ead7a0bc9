package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/delta"
	"github.com/pgferry/pgferry/internal/deltarec"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgtest"
)

// hostileNames renames every column of the all-types table: names of pgverify's own aliases and
// of SQL functions, reserved words, mixed case, spaces, quotes, backslashes, format and parameter
// markers, non-ASCII, and a name of 63 bytes (the most PostgreSQL keeps).
var hostileNames = map[string]string{
	"id": "b", "i": "h", "bi": "kt", "f8": "select", "f4": "kv", "num": "with space", "t": `quo"te`,
	"b": `back\slash`, "arr": "naïve ü 🦀", "e": strings.Repeat("ñ", 31) + "x", "d": "s", "comp": "u",
	"r": "k0", "j": "count", "jb": "sum", "u": "ORDER", "ip": "v", "net": "t", "iv": "x", "ts": "1col",
	"bits": "%I", "vb": "$1", "tsv": "'; DROP TABLE x; --", "tarr": "rows", "Mixed Case": "NULL",
}

// renameColumns gives every column of the all-types table its hostile name (through a temporary
// name first: some new names are old ones).
func renameColumns(t *testing.T, db *pgtest.DB) {
	var first, then []string
	for from, to := range hostileNames {
		tmp := ident.Quote("tmp " + from)
		first = append(first, fmt.Sprintf(`ALTER TABLE "My Schema"."All Types" RENAME COLUMN %s TO %s`, ident.Quote(from), tmp))
		then = append(then, fmt.Sprintf(`ALTER TABLE "My Schema"."All Types" RENAME COLUMN %s TO %s`, tmp, ident.Quote(to)))
	}
	db.Exec(t, strings.Join(append(first, then...), ";\n"))
}

// TestHostileNames: with every column renamed to a hostile name (the key column is called b,
// like the bucket alias narrowing once used), hash mode with every hash finds each difference
// under the new names, quick mode runs its checks, --emit-fix repairs the target, and the table
// without its key is compared as a multiset of rows and repaired too.
func TestHostileNames(t *testing.T) {
	if len(hostileNames) != len(typeCols)+1 || len(hostileNames["e"]) != 63 {
		t.Fatalf("hostileNames must rename all %d columns, one to 63 bytes", len(typeCols)+1)
	}
	src, dst := pgtest.Source(t), pgtest.Target(t)
	typesTable(t, src, false)
	typesTable(t, dst, true)
	src.Exec(t, typesInsert+`; INSERT INTO "My Schema"."All Types" (id, t) VALUES (100, 'only on source')`)
	dst.Exec(t, typesInsert+`; INSERT INTO "My Schema"."All Types" (id, t) VALUES (101, 'only on target')`)
	want := map[string]string{"100": "missing", "101": "extra"}
	var upd []string
	for _, c := range typeChanges {
		upd = append(upd, fmt.Sprintf(`UPDATE "My Schema"."All Types" SET %s WHERE id = %d`, c.set, c.id))
		want[itoa(c.id)] = "changed " + hostileNames[c.col]
	}
	dst.Exec(t, strings.Join(upd, ";"))
	renameColumns(t, src)
	renameColumns(t, dst)
	for _, cfg := range []Config{{}, {HashFunc: "md5"}, {HashFunc: "client"}, {ChunkRows: 5, Jobs: 3}, {ChunkRows: 5, Jobs: 3, HashFunc: "client"}} {
		cfg.SourceURL, cfg.TargetURL = src.URL, dst.URL
		code, rs, _ := run(t, cfg)
		r := byTable(rs)["My Schema.All Types"]
		if code != ExitDiffer || r == nil {
			t.Fatalf("--hash %q: exit %d %+v", cfg.HashFunc, code, r)
		}
		got := map[string]string{}
		for _, d := range r.Diffs {
			got[d.Key["b"]] = strings.TrimSpace(d.Kind + " " + strings.Join(d.Columns, ","))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("--hash %q, %d rows per chunk: diffs\n%v\nwant\n%v", cfg.HashFunc, cfg.ChunkRows, got, want)
		}
	}
	code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, Mode: "quick"})
	r := byTable(rs)["My Schema.All Types"]
	if code != ExitDiffer || r == nil || len(r.Checks) < 4 || r.Checks[3].Name != "max of key" || r.Checks[3].Source != "100" || r.Checks[3].Target != "101" {
		t.Fatalf("quick: exit %d %+v", code, r)
	}
	applyFix(t, src.URL, dst.URL)
	pgtest.RequireSameTable(t, src.URL, dst.URL, `"My Schema"."All Types"`)
	if code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL}); code != ExitSame {
		t.Fatalf("after the fix: exit %d %+v", code, rs)
	}
	// Without its key: one row missing, one extra, found by their values.
	noKey := `ALTER TABLE "My Schema"."All Types" DROP CONSTRAINT "All Types_pkey"`
	src.Exec(t, noKey+`; UPDATE "My Schema"."All Types" SET "quo""te" = 'changed' WHERE b = 40`)
	dst.Exec(t, noKey)
	for _, hash := range []string{"auto", "client"} {
		code, rs, _ = run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, HashFunc: hash})
		r = byTable(rs)["My Schema.All Types"]
		if got := diffSummary(r, "b", `quo"te`); code != ExitDiffer || fmt.Sprint(got) != "[extra 1 40,héllo\tworld missing 1 40,changed]" {
			t.Errorf("no key, --hash %s: exit %d %q", hash, code, got)
		}
	}
	applyFix(t, src.URL, dst.URL)
	if code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL}); code != ExitSame {
		t.Fatalf("no key, after the fix: exit %d %+v", code, rs)
	}
}

// applyFix runs pgverify --emit-fix and applies its records to the target with pgdelta's applier.
func applyFix(t *testing.T, srcURL, dstURL string) {
	t.Helper()
	var fix bytes.Buffer
	cfg := Config{SourceURL: srcURL, TargetURL: dstURL, Mode: "hash", Jobs: 2, MaxDiffs: 1000, HashFunc: "auto", EmitFix: true, SkipSchemas: []string{"pgferry"}, StateSchema: "pgferry"}
	if code, err := Run(context.Background(), cfg, io.Discard, &fix, io.Discard); err != nil || code != ExitDiffer {
		t.Fatalf("emit fix: exit %d, %v", code, err)
	}
	applyRecords(t, dstURL, fix.Bytes())
}

// applyRecords applies a batch of delta records to the target with pgdelta's applier.
func applyRecords(t *testing.T, dstURL string, fix []byte) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dstURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	a, err := delta.NewApplier(ctx, conn, "pgferry")
	if err != nil {
		t.Fatal(err)
	}
	if err := delta.ApplyInput(ctx, a, bytes.NewReader(fix)); err != nil {
		t.Fatalf("apply fix: %v", err)
	}
}

// wideDDL is a table of n columns (PostgreSQL's most is 1,600), each with a default, and with a
// key when keyed.
func wideDDL(name string, n int, keyed bool) string {
	cols := make([]string, 0, n)
	if keyed {
		cols = append(cols, "id int PRIMARY KEY")
	}
	for i := len(cols); i < n; i++ {
		cols = append(cols, fmt.Sprintf("c%d int DEFAULT %d", i, i))
	}
	return fmt.Sprintf("CREATE TABLE %s (%s)", name, strings.Join(cols, ", "))
}

// TestWideTable: tables of 1,600 columns, with and without a key, are hashed with every hash,
// narrowed to the differing key (and its column) or rows, and --emit-fix's records repair the
// keyed one.
func TestWideTable(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := wideDDL("wide", 1600, true) + "; " + wideDDL("widenk", 1600, false) + `;
INSERT INTO wide (id) SELECT generate_series(1, 30); INSERT INTO widenk (c0) SELECT generate_series(1, 30)`
	src.Exec(t, ddl)
	dst.Exec(t, ddl)
	for _, hash := range []string{"auto", "md5", "client"} {
		if code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, HashFunc: hash}); code != ExitSame {
			t.Fatalf("--hash %s: identical wide tables: exit %d %+v", hash, code, rs)
		}
	}
	dst.Exec(t, "UPDATE wide SET c1234 = 0 WHERE id = 5; DELETE FROM wide WHERE id = 7; UPDATE widenk SET c1599 = NULL WHERE c0 = 9")
	for _, hash := range []string{"auto", "md5", "client"} {
		code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, HashFunc: hash})
		w, nk := byTable(rs)["public.wide"], byTable(rs)["public.widenk"]
		if code != ExitDiffer || len(w.Diffs) != 2 || w.Diffs[0].Key["id"] != "5" || fmt.Sprint(w.Diffs[0].Columns) != "[c1234]" || w.Diffs[1].Kind != "missing" {
			t.Errorf("--hash %s: wide: exit %d %+v", hash, code, w)
		}
		if got := diffSummary(nk, "c0", "c1599"); fmt.Sprint(got) != "[extra 1 9,NULL missing 1 9,1599]" {
			t.Errorf("--hash %s: widenk: %v", hash, got)
		}
	}
	// The fix holds both rows whole; applied (pgdelta apply's staging table cannot hold 1,600
	// columns plus its own, so by json_populate_record here) it repairs the target.
	dst.Exec(t, "UPDATE widenk SET c1599 = 1599 WHERE c0 = 9")
	var fix bytes.Buffer
	cfg := Config{SourceURL: src.URL, TargetURL: dst.URL, Mode: "hash", Jobs: 2, MaxDiffs: 1000, HashFunc: "auto", EmitFix: true, SkipSchemas: []string{"pgferry"}, StateSchema: "pgferry"}
	if code, err := Run(context.Background(), cfg, io.Discard, &fix, io.Discard); err != nil || code != ExitDiffer {
		t.Fatalf("emit fix: exit %d, %v", code, err)
	}
	rd := deltarec.NewReader(bytes.NewReader(fix.Bytes()))
	var sql []string
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("fix: %v", err)
		}
		if rec.Op != deltarec.OpUpsert {
			continue
		}
		if len(rec.Row) != 1600 || *rec.Row["c1234"] != "1234" {
			t.Fatalf("upsert of %d columns, c1234 %q", len(rec.Row), *rec.Row["c1234"])
		}
		js, _ := json.Marshal(rec.Row)
		sql = append(sql, fmt.Sprintf("DELETE FROM wide WHERE id = %s; INSERT INTO wide SELECT * FROM json_populate_record(NULL::wide, %s)", *rec.Row["id"], ident.Literal(string(js))))
	}
	if len(sql) != 2 {
		t.Fatalf("%d upserts, want 2:\n%s", len(sql), fix.String())
	}
	dst.Exec(t, strings.Join(sql, ";\n"))
	if code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL}); code != ExitSame {
		t.Fatalf("after the fix: exit %d %+v", code, rs)
	}
}

// TestRegColumnsByName: reg* columns (also in an array and a domain) are compared by the names
// they print, never by OID: the target's objects have other OIDs, and its database sets another
// search_path, yet the same names are the same with every hash (binary COPY included); a value
// naming another object is a difference.
func TestRegColumnsByName(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	objects := `CREATE SCHEMA app; CREATE TABLE app.thing(x int); CREATE TYPE app.mood AS ENUM ('ok');
CREATE FUNCTION app.f(int) RETURNS int LANGUAGE sql AS 'SELECT $1';
CREATE OPERATOR app.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq);
CREATE TEXT SEARCH CONFIGURATION app.cfg (COPY = simple); CREATE TEXT SEARCH DICTIONARY app.dict (TEMPLATE = simple);
CREATE DOMAIN app.rel AS regclass;
CREATE TABLE r(id int PRIMARY KEY, c regclass, ty regtype, p regproc, pp regprocedure, o regoper, oo regoperator,
  ns regnamespace, cfg regconfig, dict regdictionary, arr regclass[], d app.rel, nk regclass);
INSERT INTO r SELECT g, 'app.thing', 'app.mood', 'app.f', 'app.f(int)', 'app.===', 'app.===(int,int)', 'app', 'app.cfg',
  'app.dict', ARRAY['app.thing'::regclass, 'pg_class'], 'app.thing', 'app.thing' FROM generate_series(1, 20) g;
CREATE TABLE rk(c regclass, t regtype); INSERT INTO rk VALUES ('app.thing', 'app.mood'), ('pg_class', 'int4')`
	src.Exec(t, objects)
	// Other OIDs on the target, and a search_path under which names print differently.
	dst.Exec(t, "CREATE TABLE pad1(x int); CREATE TYPE pad2 AS (a int); CREATE FUNCTION pad3() RETURNS int LANGUAGE sql AS 'SELECT 1'; "+objects)
	dst.Exec(t, "ALTER DATABASE "+ident.Quote(dst.Name)+" SET search_path = app, public")
	for _, hash := range []string{"auto", "md5", "client"} {
		if code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, HashFunc: hash, Filter: filterTables("r", "rk")}); code != ExitSame {
			for _, r := range rs {
				t.Errorf("--hash %s: exit %d: %s %s %s %+v", hash, code, r.Table, r.Status, r.Reason, r.Diffs)
			}
		}
	}
	dst.Exec(t, "UPDATE public.r SET c = 'public.pad1' WHERE id = 3; UPDATE public.r SET arr[2] = 'pg_type' WHERE id = 4")
	for _, hash := range []string{"auto", "client"} {
		code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, HashFunc: hash, Filter: filterTables("r", "rk")})
		r := byTable(rs)["public.r"]
		if code != ExitDiffer || len(r.Diffs) != 2 || fmt.Sprint(r.Diffs[0].Columns) != "[c]" || fmt.Sprint(r.Diffs[1].Columns) != "[arr]" {
			t.Errorf("--hash %s: exit %d %+v", hash, code, r)
		}
	}
}

// TestColumnCollations: columns of different collations, and a nondeterministic one where the
// servers have ICU (PostgreSQL 12+), are hashed bytewise: no error for want of one collation,
// and 'A' is not 'a'. With and without a key.
func TestColumnCollations(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := `CREATE TABLE c(id int PRIMARY KEY, a text COLLATE "C", b text COLLATE "POSIX"); INSERT INTO c VALUES (1, 'x', 'y'), (2, 'x', 'y');
CREATE TABLE cn(a text COLLATE "C", b text COLLATE "POSIX"); INSERT INTO cn VALUES ('x', 'y');`
	src.Exec(t, ddl)
	dst.Exec(t, ddl+"UPDATE c SET b = 'z' WHERE id = 2; UPDATE cn SET b = 'z'")
	want := map[string]string{"public.c": "[changed key 2 [b]]", "public.cn": "[extra 1 x,z missing 1 x,y]"}
	ci := `CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE ic(id int PRIMARY KEY, v text COLLATE ci); INSERT INTO ic VALUES (1, 'A');
CREATE TABLE icn(v text COLLATE ci); INSERT INTO icn VALUES ('A')`
	ctx := context.Background()
	if err := src.Cluster.Exec(ctx, src.Name, ci); err != nil {
		t.Logf("no nondeterministic collation on the source (%v): that part is skipped", err)
	} else if err := dst.Cluster.Exec(ctx, dst.Name, ci+"; UPDATE ic SET v = 'a'; UPDATE icn SET v = 'a'"); err != nil {
		t.Fatalf("the source has ICU collations but the target not: %v", err)
	} else {
		want["public.ic"], want["public.icn"] = "[changed key 1 [v]]", "[extra 1 a missing 1 A]"
	}
	for _, hash := range []string{"auto", "md5", "client"} {
		code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, HashFunc: hash})
		got := map[string]string{}
		for _, r := range rs {
			if r.pair == nil && len(r.Diffs) > 0 && r.Diffs[0].Row != nil {
				got[r.Table] = fmt.Sprint(diffSummary(r, strings.Split(map[string]string{"public.cn": "a,b", "public.icn": "v"}[r.Table], ",")...))
				continue
			}
			var ds []string
			for _, d := range r.Diffs {
				ds = append(ds, fmt.Sprintf("%s key %s %v", d.Kind, d.Key["id"], d.Columns))
			}
			got[r.Table] = fmt.Sprint(ds)
		}
		if code != ExitDiffer || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("--hash %s: exit %d\n%v\nwant\n%v", hash, code, got, want)
		}
	}
}
