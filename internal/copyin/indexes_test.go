package copyin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/pgtest"
)

const indexTablesDDL = `
CREATE TABLE public.a (id int, v text, dup int);
CREATE TABLE public.b (id int, v text);
CREATE TABLE public.p (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE public.p1 PARTITION OF public.p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE public.p2 PARTITION OF public.p FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
CREATE TABLE public.other (x int);
`

const indexRowsSQL = `
INSERT INTO public.a SELECT g, md5(g::text), g % 10 FROM generate_series(1, 4000) g;
INSERT INTO public.b SELECT g, 'B' || g FROM generate_series(1, 1000) g;
INSERT INTO public.p SELECT g, '2020-01-01'::date + g % 700 FROM generate_series(1, 1400) g;
`

// indexScript is a pg_dump-style index section; b's statements come first in the file although
// a is loaded first, and one statement is on a table that is not in the stream.
const indexScript = `SET statement_timeout = 0;
\restrict abc
ALTER TABLE ONLY public.b
    ADD CONSTRAINT b_pkey PRIMARY KEY (id);
CREATE UNIQUE INDEX b_v ON public.b USING btree (lower(v));
ALTER TABLE ONLY public.a
    ADD CONSTRAINT a_pkey PRIMARY KEY (id);
CREATE INDEX a_v ON public.a USING btree (v);
CREATE INDEX p_id ON ONLY public.p USING btree (id);
CREATE INDEX p1_id ON public.p1 USING btree (id);
CREATE INDEX p2_id ON public.p2 USING btree (id);
ALTER INDEX public.p_id ATTACH PARTITION public.p1_id;
ALTER INDEX public.p_id ATTACH PARTITION public.p2_id;
CREATE INDEX other_x ON public.other USING btree (x);
\unrestrict abc
`

var indexTables = []srcTable{
	{name: "public.a", split: "id", bounds: []int{2000}},
	{name: "public.b"},
	{name: "public.p1"},
	{name: "public.p2"},
}

// indexFixture fills a source, gives the target the same tables without rows or indexes, and
// returns the stream of the source's rows, one chunk at a time.
func indexFixture(t *testing.T) (src, dst *pgtest.DB, in []byte) {
	t.Helper()
	src, dst = pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, indexTablesDDL+indexRowsSQL)
	dst.Exec(t, indexTablesDDL)
	return src, dst, streamBytes(t, src.URL, indexTables, 1)
}

// sameIndexTables compares the full contents of the fixture's tables.
func sameIndexTables(t *testing.T, src, dst string) {
	t.Helper()
	for _, tb := range []string{"public.a", "public.b", "public.p1", "public.p2"} {
		pgtest.RequireSameTable(t, src, dst, tb)
	}
}

func writeScript(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "indexes.sql")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestIndexesOverlapLoad loads a stream with --indexes: a's index is built while b's chunk is
// still uncommitted (the hook waits for it there, and fails the test if it never comes), every
// index ends up valid, the rows are all there, and a re-run keeps what the first run built.
func TestIndexesOverlapLoad(t *testing.T) {
	src, dst, in := indexFixture(t) // the stream has one chunk at a time: a, a, b, p1, p2
	script := writeScript(t, indexScript)

	var sawOverlap bool
	testHookBeforeCommit = func(pid uint32, table string, chunk int) {
		if table != "public.b" {
			return
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if queryInt(t, dst.URL, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'a_v' AND i.indisvalid") == 1 {
				sawOverlap = true
				return
			}
		}
	}
	t.Cleanup(func() { testHookBeforeCommit = nil })
	err, stderr := load(t, dst.URL, in, Config{Jobs: 2, Indexes: script, IndexJobs: 2, ParallelWorkers: "auto"})
	testHookBeforeCommit = nil
	if err != nil {
		t.Fatalf("load: %v\n%s", err, stderr)
	}
	if !sawOverlap {
		t.Errorf("a's index was not built while b was still loading\n%s", stderr)
	}
	if !strings.Contains(stderr, "11 statements of "+script+" applied") {
		t.Errorf("stderr lacks the summary:\n%s", stderr)
	}
	sameIndexTables(t, src.URL, dst.URL)
	const valid = "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND i.indisvalid"
	if got := queryInt(t, dst.URL, valid); got != 8 {
		t.Errorf("%d valid indexes on the target, want 8", got)
	}
	if got := queryInt(t, dst.URL, "SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid IN ('public.a'::regclass, 'public.b'::regclass)"); got != 2 {
		t.Errorf("%d primary keys, want 2", got)
	}

	// A re-run after everything was done: no chunk loaded again, every statement found done.
	err, stderr = load(t, dst.URL, in, Config{Jobs: 2, Indexes: script})
	if err != nil {
		t.Fatalf("second load: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "5 of 5 chunks already loaded") || !strings.Contains(stderr, "skipped 8 statements whose objects already exist") {
		t.Errorf("second run stderr:\n%s", stderr)
	}
	if got := queryInt(t, dst.URL, valid); got != 8 {
		t.Errorf("after the re-run: %d valid indexes, want 8", got)
	}
}

// TestIndexFailureKeepsLoading: a statement that fails (a unique index over duplicates) is
// reported at once, stops the statements after it, but not the load; the run exits 1 naming the
// line, and every row is loaded.
func TestIndexFailureKeepsLoading(t *testing.T) {
	src, dst, in := indexFixture(t)
	script := writeScript(t, "CREATE UNIQUE INDEX a_dup ON public.a USING btree (dup);\nCREATE INDEX a_v ON public.a USING btree (v);\n")
	err, stderr := load(t, dst.URL, in, Config{Jobs: 2, Indexes: script})
	var ee *cliutil.ExitError
	if err == nil || !errors.As(err, &ee) || ee.Code != cliutil.ExitFailure {
		t.Fatalf("want exit 1, got %v\n%s", err, stderr)
	}
	for _, want := range []string{"an index statement failed; the load goes on", "line 1", "could not create unique index", "every row is loaded"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	sameIndexTables(t, src.URL, dst.URL)
	if got := queryInt(t, dst.URL, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"); got != 0 {
		t.Errorf("%d indexes on the target, want none (a_v comes after the failed statement on the same table)", got)
	}
}

// TestIndexesBadInput: a missing script and bad settings are refused before anything loads.
func TestIndexesBadInput(t *testing.T) {
	_, dst, in := indexFixture(t)
	for _, c := range []struct {
		name string
		cfg  Config
		code int
		want string
	}{
		{"missing file", Config{Indexes: filepath.Join(t.TempDir(), "nope.sql")}, cliutil.ExitUsage, "read --indexes"},
		{"no statements", Config{Indexes: writeScript(t, "-- nothing\n")}, cliutil.ExitFailure, "no SQL statements"},
		{"cut script", Config{Indexes: writeScript(t, "CREATE INDEX x ON public.a (id)")}, cliutil.ExitFailure, "no terminating ';'"},
		{"bad memory", Config{Indexes: writeScript(t, indexScript), MaintenanceWorkMem: "lots"}, cliutil.ExitUsage, "bad --maintenance-work-mem"},
		{"bad workers", Config{Indexes: writeScript(t, indexScript), ParallelWorkers: "many"}, cliutil.ExitUsage, "bad --parallel-workers"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err, stderr := load(t, dst.URL, in, c.cfg)
			var ee *cliutil.ExitError
			if err == nil || !errors.As(err, &ee) || ee.Code != c.code || !strings.Contains(stderr, c.want) {
				t.Fatalf("want exit %d with %q, got %v\n%s", c.code, c.want, err, stderr)
			}
			if got := queryInt(t, dst.URL, "SELECT (SELECT count(*) FROM public.a) + (SELECT count(*) FROM public.b)"); got != 0 {
				t.Errorf("%d rows loaded, want none", got)
			}
		})
	}
	if code := cliutil.RunApp(App(), []string{"pgcopyin", "--target", dst.URL, "--index-jobs", "2"}); code != cliutil.ExitUsage {
		t.Errorf("--index-jobs without --indexes: exit %d, want 2", code)
	}
}
