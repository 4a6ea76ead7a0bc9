package schema

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// rowSecSchema has row-level security (enabled, forced, two policies, a comment on one) and
// materialized views whose names sort against their dependency order: a_top reads z_base
// through a view, so refreshing in name order fails. a_top has a unique index over a plain
// column (CONCURRENTLY possible), z_base only an expression and a partial unique index (not);
// never_filled is not populated on the source; skipped is populated but excluded with
// --exclude-table-data.
const rowSecSchema = `
CREATE TABLE public.docs (id int PRIMARY KEY, tenant int NOT NULL, body text);
INSERT INTO public.docs SELECT g, g % 3, 'doc ' || g FROM generate_series(1, 30) g;
ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.docs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_read ON public.docs FOR SELECT USING (tenant = 1);
CREATE POLICY "Tenant Write" ON public.docs FOR INSERT WITH CHECK (tenant = 1);
COMMENT ON POLICY tenant_read ON public.docs IS 'readers see tenant 1';
CREATE MATERIALIZED VIEW public.z_base AS SELECT id, tenant, lower(body) AS body FROM public.docs;
CREATE UNIQUE INDEX z_base_expr ON public.z_base (lower(body));
CREATE UNIQUE INDEX z_base_part ON public.z_base (id) WHERE tenant = 1;
CREATE VIEW public.m_between AS SELECT tenant, count(*) AS n FROM public.z_base GROUP BY tenant;
CREATE MATERIALIZED VIEW public.a_top AS SELECT tenant, n FROM public.m_between;
CREATE UNIQUE INDEX a_top_tenant ON public.a_top USING btree (tenant) INCLUDE (n);
CREATE MATERIALIZED VIEW public.never_filled AS SELECT 1 AS x WITH NO DATA;
CREATE MATERIALIZED VIEW public.skipped AS SELECT 2 AS x;
`

// TestRowSecurityAndRefresh: ENABLE ROW LEVEL SECURITY and the policies are in the triggers
// section (applied at cutover), not in pre-data, so the load is never subject to them; FORCE
// stays with the table as pg_dump writes it (no effect until ENABLE). 'dump --section refresh'
// writes pg_dump's refreshes in dependency order, CONCURRENTLY where a unique plain index allows,
// and 'filter' cuts the same from a full pg_dump. Applied to a target, the views are populated
// and equal to the source's; a second run refreshes a_top concurrently (same relfilenode).
func TestRowSecurityAndRefresh(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	requireDumpable(t, src)
	psql(t, src.URL, rowSecSchema)

	pre := mustRun(t, "", "dump", "--source", src.URL, "--section", "pre-data")
	for _, bad := range []string{"CREATE POLICY", "ENABLE ROW LEVEL SECURITY", "REFRESH"} {
		if strings.Contains(pre, bad) {
			t.Errorf("pre-data holds %q", bad)
		}
	}
	if !strings.Contains(pre, "ALTER TABLE ONLY public.docs FORCE ROW LEVEL SECURITY;") {
		t.Errorf("pre-data lost FORCE ROW LEVEL SECURITY, which pg_dump writes with the table")
	}
	trg := mustRun(t, "", "dump", "--source", src.URL, "--section", "triggers")
	for _, want := range []string{"CREATE POLICY tenant_read ON public.docs", `CREATE POLICY "Tenant Write" ON public.docs`,
		"COMMENT ON POLICY tenant_read ON public.docs", "ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;"} {
		if !strings.Contains(trg, want) {
			t.Errorf("triggers section lacks %q:\n%s", want, trg)
		}
	}
	if notrg := mustRun(t, "", "dump", "--source", src.URL, "--section", "triggers", "-T", "docs"); strings.Contains(notrg, "POLICY") || strings.Contains(notrg, "ROW LEVEL") {
		t.Errorf("-T docs kept its policies:\n%s", notrg)
	}

	refresh := mustRun(t, "", "dump", "--source", src.URL, "--section", "refresh", "--exclude-table-data", "skipped")
	checkRefreshScript(t, refresh)
	full, err := exec.Command("pg_dump", "-d", src.URL).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if cut := mustRun(t, string(full), "filter", "--section", "refresh", "--exclude-table-data", "skipped"); refreshEntries(cut) != refreshEntries(refresh) {
		t.Errorf("filter --section refresh of a full dump differs from dump --section refresh:\n%s\n----\n%s", cut, refresh)
	}

	// --exclude-table-data on a full dump: the table's definition stays, its COPY goes
	if !strings.Contains(string(full), "COPY public.docs") {
		t.Fatalf("pg_dump wrote no COPY for docs")
	}
	if all := mustRun(t, string(full), "filter", "--exclude-table-data", "public.doc*"); !strings.Contains(all, "CREATE TABLE public.docs") ||
		strings.Contains(all, "COPY public.docs") || !strings.Contains(all, "REFRESH MATERIALIZED VIEW public.z_base;") {
		t.Errorf("filter --exclude-table-data public.doc* of a full dump:\n%s", all)
	}
	mustRun(t, pre, "apply", "--target", dst.URL)
	psql(t, dst.URL, "INSERT INTO public.docs SELECT g, g % 3, 'doc ' || g FROM generate_series(1, 30) g") // the copy
	mustRun(t, mustRun(t, "", "dump", "--source", src.URL, "--section", "indexes"), "apply", "--target", dst.URL, "-j", "2")
	psql(t, dst.URL, refresh) // psql, as cutover.sh runs it: each view waits for the ones it reads
	before := pgtest.QueryInt(t, dst.URL, "SELECT relfilenode::int8 FROM pg_class WHERE oid = 'public.a_top'::regclass")
	psql(t, dst.URL, refresh) // now populated: a_top is refreshed CONCURRENTLY, in place
	if after := pgtest.QueryInt(t, dst.URL, "SELECT relfilenode::int8 FROM pg_class WHERE oid = 'public.a_top'::regclass"); after != before {
		t.Errorf("a_top was rewritten (relfilenode %d -> %d): the second refresh was not CONCURRENTLY", before, after)
	}
	for _, mv := range []string{"public.z_base", "public.a_top"} {
		pgtest.RequireSameTable(t, src.URL, dst.URL, mv)
	}
	if n := pgtest.QueryInt(t, dst.URL, "SELECT count(*) FROM pg_matviews WHERE ispopulated AND matviewname IN ('never_filled', 'skipped')"); n != 0 {
		t.Errorf("%d views populated on the target that the source left empty or --exclude-table-data excluded", n)
	}
	mustRun(t, trg, "apply", "--target", dst.URL)
	if n := pgtest.QueryInt(t, dst.URL, "SELECT count(*) FROM pg_class WHERE oid = 'public.docs'::regclass AND relrowsecurity AND relforcerowsecurity"); n != 1 {
		t.Errorf("target's docs has no enabled and forced row security")
	}
	if n := pgtest.QueryInt(t, dst.URL, "SELECT count(*) FROM pg_policies WHERE tablename = 'docs'"); n != 2 {
		t.Errorf("target has %d policies on docs, want 2", n)
	}
}

// checkRefreshScript checks what dump --section refresh wrote for rowSecSchema.
func checkRefreshScript(t *testing.T, refresh string) {
	t.Helper()
	z, a := strings.Index(refresh, "REFRESH MATERIALIZED VIEW public.z_base;"), strings.Index(refresh, "REFRESH MATERIALIZED VIEW CONCURRENTLY \"public\".\"a_top\";")
	if z < 0 || a < 0 || a < z {
		t.Errorf("want z_base refreshed plainly, then a_top (CONCURRENTLY when populated), got:\n%s", refresh)
	}
	if !strings.Contains(refresh, "SET row_security = off;") {
		t.Errorf("the refresh script lost pg_dump's settings:\n%s", refresh)
	}
	for _, bad := range []string{"never_filled", "skipped", "CREATE ", "ALTER TABLE", "POLICY"} {
		if strings.Contains(refresh, bad) {
			t.Errorf("the refresh script holds %q:\n%s", bad, refresh)
		}
	}
	if n := strings.Count(refresh, "REFRESH MATERIALIZED VIEW"); n != 3 {
		t.Errorf("%d REFRESH statements, want 3 (z_base, a_top with and without CONCURRENTLY):\n%s", n, refresh)
	}
}

// refreshEntries is the part of a refresh script after its settings, without the \unrestrict
// line (its key is random per pg_dump run); a full dump sets more before its first table.
func refreshEntries(s string) string {
	if i := strings.Index(s, "\n-- Name: "); i >= 0 {
		s = s[i:]
	}
	if i := strings.Index(s, "\n\\unrestrict "); i >= 0 {
		s = s[:i]
	}
	return s
}
