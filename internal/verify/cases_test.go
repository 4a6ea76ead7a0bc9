package verify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/delta"
	"github.com/pgferry/pgferry/internal/deltarec"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/state"
)

// TestNotComparable: a column missing, a type change and a missing table are each reported as
// not comparable with the reason (a table without a key is comparable: it is the same here); a
// difference elsewhere still makes exit 1.
func TestNotComparable(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, `CREATE TABLE nokey(a int, b text); CREATE TABLE cols(id int PRIMARY KEY, a int, gone text);
CREATE TABLE typ(id int PRIMARY KEY, a int); CREATE TABLE lonely(id int PRIMARY KEY); INSERT INTO nokey VALUES (1, 'x')`)
	dst.Exec(t, `CREATE TABLE nokey(a int, b text); CREATE TABLE cols(id int PRIMARY KEY, a int, added int);
CREATE TABLE typ(id int PRIMARY KEY, a bigint); INSERT INTO nokey VALUES (1, 'x')`)
	code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL})
	if code != ExitNotComparable {
		t.Fatalf("exit %d, want 3", code)
	}
	m := byTable(rs)
	if r := m["public.nokey"]; r == nil || r.Status != StatusSame {
		t.Errorf("public.nokey: %+v, want the same", r)
	}
	for name, want := range map[string][]string{
		"public.cols":   {`column "gone" missing on the target`, `column "added" exists only on the target`},
		"public.typ":    {`column "a" is integer on the source but bigint on the target`},
		"public.lonely": {"missing on the target"},
	} {
		r := m[name]
		if r == nil || r.Status != StatusNotComparable {
			t.Errorf("%s: %+v", name, r)
			continue
		}
		for _, w := range want {
			if !strings.Contains(r.Reason, w) {
				t.Errorf("%s: reason %q does not say %q", name, r.Reason, w)
			}
		}
	}
	// Counting needs no key: nokey is the same by count.
	code, rs, _ = run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, Mode: "count", Filter: filterTables("nokey")})
	if code != ExitSame || len(rs) != 1 {
		t.Fatalf("count nokey: exit %d %+v", code, rs)
	}
	// A difference outranks "not comparable".
	src.Exec(t, "CREATE TABLE d(id int PRIMARY KEY); INSERT INTO d VALUES (1)")
	dst.Exec(t, "CREATE TABLE d(id int PRIMARY KEY)")
	if code, _, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL}); code != ExitDiffer {
		t.Fatalf("exit %d, want 1", code)
	}
}

// TestRecheck: a difference that converges during the pause is not reported; one that stays is.
func TestRecheck(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := "CREATE TABLE t(id bigint PRIMARY KEY, v text);"
	src.Exec(t, ddl+"INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g")
	dst.Exec(t, ddl+"INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 998) g; UPDATE t SET v = 'old' WHERE id = 5")
	go func() {
		time.Sleep(300 * time.Millisecond)
		dst.Cluster.Exec(context.Background(), dst.Name, "INSERT INTO t VALUES (999, 'v999'); UPDATE t SET v = 'v5' WHERE id = 5")
	}()
	code, rs, diag := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, Recheck: 2 * time.Second})
	r := byTable(rs)["public.t"]
	if code != ExitDiffer || r == nil || !r.Rechecked || len(r.Diffs) != 1 || r.Diffs[0].Key["id"] != "1000" || r.Diffs[0].Kind != "missing" {
		t.Fatalf("exit %d, result %+v", code, r)
	}
	if !strings.Contains(diag, "re-checking") {
		t.Errorf("no re-check notice on stderr: %q", diag)
	}
}

// TestEmitFixRepairs: the records of --emit-fix pass the record format's validation, and
// applying them with pgdelta's applier makes the damaged target clean.
func TestEmitFixRepairs(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	typesTable(t, src, false)
	typesTable(t, dst, true)
	src.Exec(t, typesInsert+`; INSERT INTO "My Schema"."All Types" (id, t) VALUES (100, 'only on source')`)
	dst.Exec(t, typesInsert+`; INSERT INTO "My Schema"."All Types" (id, t) VALUES (101, 'only on target')`)
	var upd []string
	for _, c := range typeChanges {
		upd = append(upd, `UPDATE "My Schema"."All Types" SET `+c.set+` WHERE id = `+itoa(c.id))
	}
	dst.Exec(t, strings.Join(upd, ";"))

	var out, fix bytes.Buffer
	cfg := Config{SourceURL: src.URL, TargetURL: dst.URL, Mode: "hash", Jobs: 2, MaxDiffs: 1000, HashFunc: "auto", EmitFix: true, JSON: true, SkipSchemas: []string{"pgferry"}, StateSchema: "pgferry"}
	code, err := Run(context.Background(), cfg, &out, &fix, io.Discard)
	if err != nil || code != ExitDiffer {
		t.Fatalf("exit %d, err %v", code, err)
	}
	rd := deltarec.NewReader(bytes.NewReader(fix.Bytes()))
	var recs []*deltarec.Record
	for {
		r, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("record format: %v\n%s", err, fix.String())
		}
		recs = append(recs, r)
	}
	ups, dels := 0, 0
	for _, r := range recs[1 : len(recs)-1] {
		switch r.Op {
		case deltarec.OpUpsert:
			ups++
			if len(r.Row) != len(typeCols)+1 {
				t.Errorf("upsert with %d columns, want all %d", len(r.Row), len(typeCols)+1)
			}
		case deltarec.OpDelete:
			dels++
			if *r.Key["id"] != "101" {
				t.Errorf("delete of %v, want id 101", r.Key)
			}
		}
	}
	if recs[0].Op != deltarec.OpBegin || recs[len(recs)-1].Op != deltarec.OpCommit || *recs[len(recs)-1].Rows != int64(ups+dels) || ups != len(typeChanges)+1 || dels != 1 {
		t.Fatalf("records: begin/commit wrong or %d upserts, %d deletes:\n%s", ups, dels, fix.String())
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dst.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	a, err := delta.NewApplier(ctx, conn, "pgferry")
	if err != nil {
		t.Fatal(err)
	}
	if err := delta.ApplyInput(ctx, a, bytes.NewReader(fix.Bytes())); err != nil {
		t.Fatalf("apply fix: %v", err)
	}
	pgtest.RequireSameTable(t, src.URL, dst.URL, `"My Schema"."All Types"`)
	if code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL}); code != ExitSame {
		t.Fatalf("after the fix: exit %d %+v", code, rs[0])
	}
}

// TestFixKeepsApplyPosition: a fix batch must not move the target's apply position.
func TestFixKeepsApplyPosition(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, "CREATE TABLE t(id int PRIMARY KEY); INSERT INTO t VALUES (1)")
	dst.Exec(t, `CREATE TABLE t(id int PRIMARY KEY)`)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dst.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := state.Ensure(ctx, conn, "pgferry"); err != nil {
		t.Fatal(err)
	}
	dst.Exec(t, `INSERT INTO pgferry.apply_position(id, position) VALUES (1, '100:100:')`)
	var fix bytes.Buffer
	cfg := Config{SourceURL: src.URL, TargetURL: dst.URL, Mode: "hash", Jobs: 1, MaxDiffs: 10, HashFunc: "auto", EmitFix: true, SkipSchemas: []string{"pgferry"}, StateSchema: "pgferry"}
	if _, err := Run(ctx, cfg, io.Discard, &fix, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(fix.String()), "\n")
	if len(lines) != 3 || lines[0] != `{"op":"begin","from":"100:100:","to":"100:100:"}` || !strings.HasPrefix(lines[2], `{"op":"commit","to":"100:100:","rows":1}`) {
		t.Fatalf("fix:\n%s", fix.String())
	}
}

// TestSplitCoversEveryRow: big tables are cut into key ranges, with and without statistics,
// and the chunks together hold every row exactly once.
func TestSplitCoversEveryRow(t *testing.T) {
	src := pgtest.Source(t)
	src.Exec(t, `CREATE TABLE a(id bigint PRIMARY KEY); INSERT INTO a SELECT generate_series(-500, 1500);
CREATE TABLE u(id uuid PRIMARY KEY); INSERT INTO u SELECT md5(g::text)::uuid FROM generate_series(1, 2000) g; ANALYZE u;
CREATE TABLE s(id text PRIMARY KEY); INSERT INTO s SELECT g::text FROM generate_series(1, 2000) g; ANALYZE s`)
	ctx := context.Background()
	sd, err := openSide(ctx, src.URL, "source", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.close()
	pairs, err := listPairs(ctx, sd.exporter, sd.exporter, Config{SkipSchemas: []string{"pgferry"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		p.EstRows = 2000
		cs, err := splitTable(ctx, sd, p, 200)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name == "public.s" {
			if len(cs) != 1 {
				t.Errorf("text key split into %d chunks: collations may order it differently", len(cs))
			}
			continue
		}
		if len(cs) < 5 {
			t.Errorf("%s: %d chunks, want about 10", p.Name, len(cs))
		}
		var total int64
		for _, c := range cs {
			var n int64
			if err := sd.exporter.QueryRow(ctx, "SELECT count(*) FROM "+p.from()+" WHERE "+c.where, c.args...).Scan(&n); err != nil {
				t.Fatal(err)
			}
			total += n
		}
		var want int64
		sd.exporter.QueryRow(ctx, "SELECT count(*) FROM "+p.from()).Scan(&want)
		if total != want {
			t.Errorf("%s: chunks hold %d rows, table %d", p.Name, total, want)
		}
	}
}

// TestQuickFlagsSequenceBehind: quick mode reports a target sequence behind its column's max.
func TestQuickFlagsSequenceBehind(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := "CREATE TABLE t(id serial PRIMARY KEY, v text);"
	src.Exec(t, ddl+"INSERT INTO t(v) SELECT 'x' FROM generate_series(1, 10)")
	dst.Exec(t, ddl+"INSERT INTO t SELECT g, 'x' FROM generate_series(1, 10) g")
	code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, Mode: "quick"})
	r := byTable(rs)["public.t"]
	if code != ExitDiffer || r == nil || !strings.Contains(r.Reason, "sequence") {
		t.Fatalf("exit %d %+v", code, r)
	}
	dst.Exec(t, "SELECT setval('t_id_seq', 10)")
	if code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, Mode: "quick"}); code != ExitSame {
		t.Fatalf("after setval: exit %d %+v", code, rs[0].Checks)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func filterTables(names ...string) catalog.Filter { return catalog.Filter{Tables: names} }

// TestMaxDiffs: a table that differs everywhere names at most --max-diffs keys and says there are more.
func TestMaxDiffs(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, "CREATE TABLE t(id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 5000) g; ANALYZE t")
	dst.Exec(t, "CREATE TABLE t(id int PRIMARY KEY, v int)")
	code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, MaxDiffs: 7})
	r := byTable(rs)["public.t"]
	if code != ExitDiffer || r == nil || len(r.Diffs) != 7 || !r.Truncated || r.Missing != 7 {
		t.Fatalf("exit %d %+v", code, r)
	}
}

// TestLostConnectionRedoesTheUnit: a worker whose connection is killed reconnects, imports the
// snapshot again and redoes its unit, still reading the snapshot's rows.
func TestLostConnectionRedoesTheUnit(t *testing.T) {
	src := pgtest.Source(t)
	src.Exec(t, "CREATE TABLE t(id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
	ctx := context.Background()
	s, err := openSide(ctx, src.URL, "source", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	src.Exec(t, "INSERT INTO t VALUES (3)") // after the snapshot: must stay invisible
	count := func() int64 {
		var n int64
		if err := s.inSnapshot(ctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT count(*) FROM public.t").Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("count %d, want 2", n)
	}
	var pid uint32
	s.exporter.QueryRow(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgferry-pgverify' AND pid <> pg_backend_pid() AND datname = current_database()").Scan(&pid)
	if pid == 0 {
		t.Fatal("worker connection not found")
	}
	src.Exec(t, fmt.Sprintf("SELECT pg_terminate_backend(%d)", pid))
	if n := count(); n != 2 {
		t.Fatalf("after the lost connection: count %d, want 2", n)
	}
}

// TestDuplicateOnKeylessTarget: a target without the primary key yet, holding a row twice
// (a chunk loaded twice), is a difference, and the fix leaves one copy.
func TestDuplicateOnKeylessTarget(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, "CREATE TABLE t(id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' FROM generate_series(1, 100) g")
	dst.Exec(t, "CREATE TABLE t(id int NOT NULL, v text); INSERT INTO t SELECT g, 'v' FROM generate_series(1, 100) g; INSERT INTO t VALUES (42, 'v'), (7, 'w'), (7, 'w')")
	code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL})
	r := byTable(rs)["public.t"]
	if code != ExitDiffer || r == nil || r.Duplicate != 2 || len(r.Diffs) != 2 || r.Diffs[0].Key["id"] != "42" || r.Diffs[1].Key["id"] != "7" {
		t.Fatalf("exit %d %+v", code, r)
	}
}

// TestQuickIntegerKeyOrder: quick mode's min and max of an integer key are the numbers' min and
// max (ordered as text, 999 would be the max of 1..2001).
func TestQuickIntegerKeyOrder(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := "CREATE TABLE t(id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 2001);"
	src.Exec(t, ddl)
	dst.Exec(t, ddl+"DELETE FROM t WHERE id = 2001; INSERT INTO t VALUES (0)")
	code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, Mode: "quick"})
	r := byTable(rs)["public.t"]
	got := map[string]string{}
	for _, c := range r.Checks {
		got[c.Name] = c.Source + " " + c.Target
	}
	if code != ExitDiffer || got["min of key"] != "1 0" || got["max of key"] != "2001 2000" || got["exact count"] != "2001 2001" {
		t.Fatalf("exit %d, checks %v", code, got)
	}
}

// TestProgressLines: into a file, the hash scan writes labelled, timestamped progress lines, a
// line per finished table and a summary with both sides' rows.
func TestProgressLines(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := "CREATE TABLE a(id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 3000); CREATE TABLE b(v text); INSERT INTO b VALUES ('x');"
	src.Exec(t, ddl)
	dst.Exec(t, ddl)
	code, _, diag := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, ChunkRows: 100, ProgressEvery: time.Millisecond})
	if code != ExitSame {
		t.Fatalf("exit %d", code)
	}
	stamp := `pgverify: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ `
	for _, want := range []string{
		stamp + `\d+/2 tables, \d+ rows`,
		stamp + `public\.a done: 6000 rows`,
		stamp + `public\.b done: 2 rows`,
		stamp + `2/2 tables, 6002 rows, .*done in`,
	} {
		if !regexp.MustCompile(want).MatchString(diag) {
			t.Errorf("stderr does not match %s:\n%s", want, diag)
		}
	}
	if _, _, diag := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, Progress: "none"}); diag != "" {
		t.Errorf("--progress none: stderr %q", diag)
	}
}
