package schema

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// pgDumpOnPath is the major version of the pg_dump the tests run (15 for Debian's).
func pgDumpOnPath(t *testing.T) int {
	t.Helper()
	major, _, err := pgDumpMajor(context.Background(), "pg_dump")
	if err != nil {
		t.Fatalf("pg_dump on PATH: %v", err)
	}
	return major / 100
}

// requireDumpable lets a test that dumps src go on when the pg_dump on PATH can dump it. When src
// is newer, it checks that pgschema dump refuses it clearly, then skips the rest of the test.
func requireDumpable(t *testing.T, src *pgtest.DB) {
	t.Helper()
	dump, server := pgDumpOnPath(t), src.Cluster.Major()
	if server <= dump {
		return
	}
	out, errs, code := run(t, "", "dump", "--source", src.URL)
	for _, want := range []string{fmt.Sprintf("pg_dump is too old for the source: pg_dump (PostgreSQL) %d.", dump), fmt.Sprintf("server is %d", server), fmt.Sprintf("install pg_dump %d or newer", server)} {
		if code != 2 || out != "" || !strings.Contains(errs, want) {
			t.Fatalf("dump of a PostgreSQL %d source with pg_dump %d: exit %d, want 2 and %q:\n%s", server, dump, code, want, errs)
		}
	}
	t.Skipf("PostgreSQL %d source: pg_dump %d cannot dump it and pgschema dump refuses it clearly; the rest of this test needs pg_dump %d or newer", server, dump, server)
}

// skipUndumpable skips the rest of a test when db is newer than the pg_dump on PATH; what says
// what the rest does.
func skipUndumpable(t *testing.T, db *pgtest.DB, what string) {
	t.Helper()
	if dump, server := pgDumpOnPath(t), db.Cluster.Major(); server > dump {
		t.Skipf("%s needs pg_dump %d or newer, this one is %d (every check before it passed)", what, server, dump)
	}
}

// snapshotOf reads db's catalog as diff does.
func snapshotOf(t *testing.T, db *pgtest.DB) Catalog {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	cat, err := Snapshot(ctx, conn, "pgferry")
	if err != nil {
		t.Fatalf("PostgreSQL %d: %v", db.Cluster.Major(), err)
	}
	return cat
}

// TestDiffTriggersByVersion: diff lists each trigger once, as it was created, on every version:
// a row trigger on a partitioned table is cloned to its partitions (user triggers with a parent
// from 15, internal ones before), and servers before 12 print EXECUTE FUNCTION as EXECUTE
// PROCEDURE. The matrix runs the older branches with an 11 and a 13 source.
func TestDiffTriggersByVersion(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := `CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
		CREATE TABLE public.ev (id int, at date) PARTITION BY RANGE (at);
		CREATE TABLE public.ev_2024 PARTITION OF public.ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
		CREATE TABLE public.plain (id int);
		CREATE TRIGGER ev_touch AFTER UPDATE ON public.ev FOR EACH ROW EXECUTE FUNCTION public.touch();
		CREATE TRIGGER plain_touch AFTER UPDATE ON public.plain FOR EACH ROW EXECUTE FUNCTION public.touch();`
	src.Exec(t, ddl)
	dst.Exec(t, ddl)
	want := fmt.Sprint(map[string]string{
		"public.ev.ev_touch":       "CREATE TRIGGER ev_touch AFTER UPDATE ON public.ev FOR EACH ROW EXECUTE FUNCTION public.touch()",
		"public.plain.plain_touch": "CREATE TRIGGER plain_touch AFTER UPDATE ON public.plain FOR EACH ROW EXECUTE FUNCTION public.touch()",
	})
	for _, db := range []*pgtest.DB{src, dst} {
		if got := fmt.Sprint(snapshotOf(t, db)["trigger"]); got != want {
			t.Errorf("PostgreSQL %d: triggers\n%s\nwant\n%s", db.Cluster.Major(), got, want)
		}
	}
	if out, errs, code := run(t, "", "diff", "--source", src.URL, "--target", dst.URL); code != 0 {
		t.Errorf("diff PostgreSQL %d -> %d: exit %d\n%s%s", src.Cluster.Major(), dst.Cluster.Major(), code, out, errs)
	}
}

// TestDiffViewsAcrossVersions: a view is the same whatever the two servers print for it (from 16
// the columns of a single-table view are unqualified: a 15 source and a 16 target print it two
// ways, and the target prints the source's definition again to compare); a changed view is still
// reported. The matrix runs the mixed case with 13 -> 16 and 11 -> 17.
func TestDiffViewsAcrossVersions(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := `CREATE TABLE public.t (id int, v text);
		CREATE VIEW public.one AS SELECT id, v FROM public.t WHERE id < 10;
		CREATE MATERIALIZED VIEW public.mat AS SELECT v, count(*) AS n FROM public.t GROUP BY v;
		CREATE VIEW public.two AS SELECT a.id, b.v FROM public.t a JOIN public.t b ON a.id = b.id;`
	src.Exec(t, ddl)
	dst.Exec(t, ddl)
	s, d := snapshotOf(t, src), snapshotOf(t, dst)
	mixed := (src.Cluster.Version >= 160000) != (dst.Cluster.Version >= 160000)
	if printedApart := s["view"]["public.one"] != d["view"]["public.one"]; printedApart != mixed {
		t.Errorf("PostgreSQL %d and %d print the single-table view as %q and %q (printed apart: %v, want %v)",
			src.Cluster.Major(), dst.Cluster.Major(), s["view"]["public.one"], d["view"]["public.one"], printedApart, mixed)
	}
	if out, errs, code := run(t, "", "diff", "--source", src.URL, "--target", dst.URL); code != 0 {
		t.Fatalf("diff PostgreSQL %d -> %d: exit %d\n%s%s", src.Cluster.Major(), dst.Cluster.Major(), code, out, errs)
	}
	dst.Exec(t, "CREATE OR REPLACE VIEW public.one AS SELECT id, v FROM public.t WHERE id < 20")
	out, _, code := run(t, "", "diff", "--source", src.URL, "--target", dst.URL)
	if code != 1 || !strings.Contains(out, "view public.one: different") || strings.Contains(out, "public.mat") || strings.Contains(out, "public.two") {
		t.Errorf("diff after changing public.one on the target: exit %d\n%s", code, out)
	}
}
