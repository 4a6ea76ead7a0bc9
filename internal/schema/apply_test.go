package schema

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/pgtest"
)

func queryInt(t *testing.T, url, sql string) int { return int(pgtest.QueryInt(t, url, sql)) }

// TestApplyParallelAndSettings applies an index section with 4 connections: indexes on many
// tables, partition indexes with attaches, and a search_path set at the top that every
// connection must see (the statements use unqualified names in a non-public schema).
func TestApplyParallelAndSettings(t *testing.T) {
	dst := pgtest.Target(t)
	var setup, section strings.Builder
	setup.WriteString("CREATE SCHEMA app;\nCREATE TABLE app.p (id int, at date) PARTITION BY RANGE (at);\n")
	section.WriteString("SELECT pg_catalog.set_config('search_path', 'app', false);\nSET maintenance_work_mem = '64MB';\n")
	section.WriteString("CREATE INDEX p_id ON ONLY p USING btree (id);\n")
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&setup, "CREATE TABLE app.p%d PARTITION OF app.p FOR VALUES FROM ('202%d-01-01') TO ('202%d-01-01');\n", i, i, i+1)
		fmt.Fprintf(&section, "CREATE INDEX p%d_id ON p%d USING btree (id);\n", i, i)
	}
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&section, "ALTER INDEX p_id ATTACH PARTITION p%d_id;\n", i)
	}
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&setup, "CREATE TABLE app.t%d AS SELECT g AS id, md5(g::text) AS s FROM generate_series(1, 2000) g;\n", i)
		fmt.Fprintf(&section, "ALTER TABLE ONLY t%d\n    ADD CONSTRAINT t%d_pkey PRIMARY KEY (id);\n\nCREATE INDEX t%d_s ON t%d USING btree (s);\nCOMMENT ON INDEX t%d_s IS 'x';\n", i, i, i, i, i)
	}
	for i := 1; i < 12; i++ {
		fmt.Fprintf(&section, "ALTER TABLE ONLY t%d ADD CONSTRAINT t%d_fk FOREIGN KEY (id) REFERENCES t%d(id) NOT VALID;\n", i, i, i-1)
		fmt.Fprintf(&section, "ALTER TABLE ONLY t%d VALIDATE CONSTRAINT t%d_fk;\n", i, i)
	}
	dst.Exec(t, setup.String())
	_, errs, code := run(t, section.String(), "apply", "--target", dst.URL, "-j", "4")
	if code != 0 {
		t.Fatalf("apply: exit %d: %s", code, errs)
	}
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app' AND i.indisvalid"); n != 4+1+24 {
		t.Errorf("%d valid indexes, want 29", n)
	}
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated"); n != 11 {
		t.Errorf("%d validated foreign keys, want 11", n)
	}
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM pg_description d JOIN pg_class c ON c.oid = d.objoid WHERE c.relname LIKE 't%_s'"); n != 12 {
		t.Errorf("%d index comments, want 12", n)
	}
}

// TestApplyStopsAtFirstError checks the error names the line, the statement and the server's
// message, exits 1, and that nothing after the failing barrier ran.
func TestApplyStopsAtFirstError(t *testing.T) {
	dst := pgtest.Target(t)
	script := "SET lock_timeout = '5s';\nCREATE TABLE a (id int);\n\n-- comment\nCREATE INDEX a_id ON public.a (id);\nCREATE INDEX b_id\n    ON public.missing (id);\nCREATE TABLE after_error (id int);\n"
	_, errs, code := run(t, script, "apply", "--target", dst.URL, "-j", "2")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"apply statement at line 6", `relation "public.missing" does not exist`, "42P01", "statement: CREATE INDEX b_id\n    ON public.missing (id);", "hint:"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM pg_class WHERE relname IN ('a', 'a_id', 'after_error')"); n != 2 {
		t.Errorf("%d of a, a_id, after_error exist, want a and a_id only", n)
	}
	// a connection failure is exit 2
	_, errs, code = run(t, "SELECT 1;", "apply", "--target", "postgres://nobody@/none?host=/nonexistent&port=1")
	if code != 2 || !strings.Contains(errs, "connect to target") {
		t.Errorf("bad target: exit %d: %s", code, errs)
	}
}

// TestRoles creates roles referenced by a source schema on the target, twice (idempotent),
// after which the pre-data section with owners and grants applies cleanly.
func TestRoles(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	sfx := strings.ReplaceAll(filepath.Base(src.Name), "-", "_")
	owner, reader, unused := "Owner "+sfx, "reader_"+sfx, "unused_"+sfx
	src.Exec(t, fmt.Sprintf(`CREATE ROLE %q LOGIN PASSWORD 'secret' CONNECTION LIMIT 7; CREATE ROLE %q; CREATE ROLE %q;
		GRANT %q TO %q;
		CREATE SCHEMA s AUTHORIZATION %q;
		CREATE TABLE s.t (id int); ALTER TABLE s.t OWNER TO %q;
		GRANT SELECT ON s.t TO %q;
		CREATE ROLE %q; ALTER TABLE s.t ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON s.t TO %q USING (true);`, owner, reader, unused, reader, owner, owner, owner, reader, "pol_"+sfx, "pol_"+sfx))
	// roles named only by a large object: its owner and a grantee
	loOwner, loReader := "lo_owner_"+sfx, "lo_reader_"+sfx
	src.Exec(t, fmt.Sprintf(`CREATE ROLE %[1]q; CREATE ROLE %[2]q;
		DO $$DECLARE o oid := lo_from_bytea(0, 'x'); BEGIN
		EXECUTE format('ALTER LARGE OBJECT %%s OWNER TO %%I', o, %[3]s); EXECUTE format('GRANT SELECT ON LARGE OBJECT %%s TO %%I', o, %[4]s); END$$`,
		loOwner, loReader, "'"+loOwner+"'", "'"+loReader+"'"))
	out := mustRun(t, "", "roles", "--source", src.URL)
	for _, want := range []string{fmt.Sprintf(`CREATE ROLE %q NOLOGIN`, loOwner), fmt.Sprintf(`CREATE ROLE %q NOLOGIN`, loReader)} {
		if !strings.Contains(out, want) {
			t.Errorf("roles output lacks the large object's role: %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, unused) || strings.Contains(out, "secret") || strings.Contains(out, "PASSWORD") {
		t.Errorf("roles output:\n%s", out)
	}
	for _, want := range []string{fmt.Sprintf(`CREATE ROLE %q LOGIN CONNECTION LIMIT 7`, owner), fmt.Sprintf(`CREATE ROLE %q NOLOGIN`, reader), fmt.Sprintf(`GRANT %q TO %q;`, reader, owner)} {
		if !strings.Contains(out, want) {
			t.Errorf("roles output lacks %q:\n%s", want, out)
		}
	}
	mustRun(t, out, "apply", "--target", dst.URL)
	mustRun(t, out, "apply", "--target", dst.URL) // re-run: no error
	if n := queryInt(t, dst.URL, fmt.Sprintf("SELECT count(*) FROM pg_roles WHERE rolname IN ('%s', '%s', 'pol_%s')", owner, reader, sfx)); n != 3 {
		t.Errorf("%d roles on target, want 3", n)
	}
	requireDumpable(t, src)
	pre := mustRun(t, "", "dump", "--source", src.URL, "--section", "pre-data")
	mustRun(t, pre, "apply", "--target", dst.URL)
	if out, errs, code := run(t, "", "diff", "--source", src.URL, "--target", dst.URL); code != 0 {
		t.Errorf("diff: %d %s %s", code, out, errs)
	}
}

// TestDumpChecksPgDumpVersion runs dump with a pg_dump that claims to be older than the server.
func TestDumpChecksPgDumpVersion(t *testing.T) {
	src := pgtest.Source(t)
	fake := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, errs, code := run(t, "", "dump", "--source", src.URL, "--pg-dump", fake)
	if code != 2 || out != "" || !strings.Contains(errs, fmt.Sprintf("pg_dump is too old for the source: pg_dump (PostgreSQL) 9.6.24, server is %d", src.Cluster.Major())) || !strings.Contains(errs, "--pg-dump") {
		t.Errorf("exit %d: %s", code, errs)
	}
}

// TestApplyRedoesAfterLostConnection kills the connection running a statement once: apply
// reconnects, replays the settings (the search_path the later statements rely on) and redoes it.
func TestApplyRedoesAfterLostConnection(t *testing.T) {
	dst := pgtest.Target(t)
	dst.Exec(t, "CREATE SCHEMA app; CREATE SEQUENCE app.kill_once;")
	script := `SELECT pg_catalog.set_config('search_path', 'app', false);
SELECT CASE WHEN nextval('kill_once') = 1 THEN pg_terminate_backend(pg_backend_pid()) END;
CREATE TABLE t_after (id int);
`
	_, errs, code := run(t, script, "apply", "--target", dst.URL, "-j", "2")
	if code != 0 {
		t.Fatalf("apply: exit %d: %s", code, errs)
	}
	if n := queryInt(t, dst.URL, "SELECT last_value FROM app.kill_once"); n != 2 {
		t.Errorf("the killed statement ran %d times, want 2", n)
	}
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM pg_tables WHERE schemaname = 'app' AND tablename = 't_after'"); n != 1 {
		t.Errorf("t_after is not in app: settings were not replayed after the reconnect")
	}
}

// TestApplyRunsInParallel builds four slow indexes (each row's key takes 0.7 s to compute) on
// four tables: -j 4 must take well under the time of -j 1, and the result must be the same.
func TestApplyRunsInParallel(t *testing.T) {
	dst := pgtest.Target(t)
	dst.Exec(t, `CREATE FUNCTION public.slow(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 FROM pg_sleep(0.7)';
		CREATE TABLE public.a (id int); CREATE TABLE public.b (id int); CREATE TABLE public.c (id int); CREATE TABLE public.d (id int);
		INSERT INTO public.a VALUES (1); INSERT INTO public.b VALUES (1); INSERT INTO public.c VALUES (1); INSERT INTO public.d VALUES (1);`)
	script := "SET statement_timeout = 0;\n"
	for _, tb := range []string{"a", "b", "c", "d"} {
		script += fmt.Sprintf("CREATE INDEX %s_slow ON public.%s (public.slow(id));\n", tb, tb)
	}
	elapsed := func(jobs string) time.Duration {
		dst.Exec(t, "DROP INDEX IF EXISTS a_slow, b_slow, c_slow, d_slow")
		start := time.Now()
		mustRun(t, script, "apply", "--target", dst.URL, "-j", jobs)
		if n := queryInt(t, dst.URL, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%_slow'"); n != 4 {
			t.Fatalf("-j %s built %d indexes", jobs, n)
		}
		return time.Since(start)
	}
	serial, parallel := elapsed("1"), elapsed("4")
	t.Logf("-j 1: %s, -j 4: %s", serial, parallel)
	if serial < 2800*time.Millisecond || parallel > serial*7/10 {
		t.Errorf("-j 1 took %s, -j 4 %s: not parallel", serial, parallel)
	}
}

// TestApplySkipExisting finishes a section after a failure: re-running it fails on the objects
// already made, unless --skip-existing, after which the schemas match.
func TestApplySkipExisting(t *testing.T) {
	pagila := readPagila(t)
	src, dst := pgtest.Source(t), pgtest.Target(t)
	requireDumpable(t, src)
	psql(t, src.URL, pagila)
	dumped := mustRun(t, "", "dump", "--source", src.URL)
	pre := mustRun(t, dumped, "filter", "--section", "pre-data")
	post := mustRun(t, dumped, "filter", "--section", "post-data")
	mustRun(t, pre, "apply", "--target", dst.URL, "-j", "2")
	// half of the post-data section went in before a failure
	half := post[:strings.Index(post, "-- Name: film_fulltext_idx")]
	mustRun(t, half, "apply", "--target", dst.URL, "-j", "2")
	if _, errs, code := run(t, post, "apply", "--target", dst.URL, "-j", "2"); code != 1 || !strings.Contains(errs, "apply statement at line") {
		t.Fatalf("re-run without --skip-existing: exit %d: %s", code, errs)
	}
	_, errs, code := run(t, post, "apply", "--target", dst.URL, "-j", "2", "--skip-existing")
	if code != 0 || !strings.Contains(errs, "already exist") {
		t.Fatalf("--skip-existing: exit %d: %s", code, errs)
	}
	mustRun(t, pre, "apply", "--target", dst.URL, "--skip-existing")
	if out, errs, code := run(t, "", "diff", "--source", src.URL, "--target", dst.URL); code != 0 {
		t.Errorf("diff: exit %d\n%s%s", code, out, errs)
	}
}
