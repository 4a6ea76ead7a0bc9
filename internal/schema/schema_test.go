package schema

import (
	"bytes"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pagilaPath is the pagila schema kept in the repository (see its LICENSE beside it).
const pagilaPath = "../../scripts/demo-data/pagila-schema.sql"

// run runs pgschema with args and stdin, returning stdout, stderr and the exit code.
func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(append([]string{"pgschema"}, args...), strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// mustRun runs pgschema and fails the test unless it exits 0.
func mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errs, code := run(t, stdin, args...)
	if code != 0 {
		t.Fatalf("pgschema %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out
}

// psql runs a script with psql, stopping at the first error.
func psql(t *testing.T, url, script string) {
	t.Helper()
	cmd := exec.Command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
}

func pgDump(t *testing.T, url string) string {
	t.Helper()
	out, err := exec.Command("pg_dump", "--schema-only", "-d", url).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	return string(out)
}

func readPagila(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(pagilaPath)
	if err != nil {
		t.Fatalf("pagila schema not available: %v", err)
	}
	return string(b)
}

// dumpEntries normalizes a pg_dump script for comparison: \restrict keys (random per dump)
// are dropped, a trigger's EXECUTE PROCEDURE (as servers before 12 print it) reads EXECUTE
// FUNCTION, and the script is cut into its pg_dump entries, sorted.
func dumpEntries(t *testing.T, s string) (string, []string) {
	t.Helper()
	var keep []string
	for _, ln := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(ln, `\restrict `) || strings.HasPrefix(ln, `\unrestrict `) {
			continue
		}
		keep = append(keep, strings.Replace(ln, " EXECUTE PROCEDURE ", " EXECUTE FUNCTION ", 1))
	}
	norm := strings.Join(keep, "")
	sc, err := Parse([]byte(norm))
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for _, e := range sc.Entries {
		var b strings.Builder
		b.WriteString(e.Lead)
		for _, c := range e.Chunks {
			b.WriteString(c.Text())
		}
		entries = append(entries, b.String())
	}
	sort.Strings(entries)
	return norm, entries
}

// TestPagilaRoundTrip loads pagila into a source, moves its schema with dump | apply in two
// sections, and checks that diff is clean and that the target dumps like the source.
func TestPagilaRoundTrip(t *testing.T) {
	pagila := readPagila(t)
	src, dst := pgtest.Source(t), pgtest.Target(t)
	requireDumpable(t, src)
	psql(t, src.URL, pagila)

	pre := mustRun(t, "", "dump", "--source", src.URL, "--section", "pre-data")
	if strings.Contains(pre, "CREATE INDEX") || strings.Contains(pre, "CREATE TRIGGER") || strings.Contains(pre, "FOREIGN KEY") {
		t.Fatal("pre-data holds post-data statements")
	}
	mustRun(t, pre, "apply", "--target", dst.URL, "-j", "2")
	post := mustRun(t, "", "dump", "--source", src.URL, "--section", "post-data")
	mustRun(t, post, "apply", "--target", dst.URL, "-j", "4")

	out, errs, code := run(t, "", "diff", "--source", src.URL, "--target", dst.URL)
	if code != 0 {
		t.Fatalf("diff: exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(errs, "schemas match") {
		t.Errorf("diff stderr: %q", errs)
	}

	skipUndumpable(t, dst, "comparing the target's pg_dump with the source's")
	a, ae := dumpEntries(t, pgDump(t, src.URL))
	b, be := dumpEntries(t, pgDump(t, dst.URL))
	if strings.Join(ae, "\x00") != strings.Join(be, "\x00") {
		for i := 0; i < len(ae) && i < len(be); i++ {
			if ae[i] != be[i] {
				t.Fatalf("target's pg_dump differs from the source's; first different entry:\nsource:\n%s\ntarget:\n%s", ae[i], be[i])
			}
		}
		t.Fatalf("target's pg_dump has %d entries, source's %d", len(be), len(ae))
	}
	if a != b {
		t.Logf("pg_dump outputs hold the same entries in a different order")
	} else {
		t.Logf("pg_dump outputs are identical apart from the \\restrict keys")
	}
}

// TestPagilaDiffFindsDifferences checks that diff is not blind: a dropped index, a changed
// default, and a missing trigger on the target are all reported, with exit 1.
func TestPagilaDiffFindsDifferences(t *testing.T) {
	pagila := readPagila(t)
	src, dst := pgtest.Source(t), pgtest.Target(t)
	psql(t, src.URL, pagila)
	psql(t, dst.URL, pagila)
	if out, errs, code := run(t, "", "diff", "--source", src.URL, "--target", dst.URL); code != 0 {
		t.Fatalf("identical loads differ: %d\n%s%s", code, out, errs)
	}
	dst.Exec(t, `DROP INDEX public.idx_actor_last_name;
		ALTER TABLE public.film ALTER COLUMN rental_rate SET DEFAULT 5.99;
		DROP TRIGGER last_updated ON public.city;
		ALTER TABLE public.city ALTER COLUMN last_update DROP NOT NULL;
		CREATE OR REPLACE FUNCTION public.last_updated() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.last_update = now(); RETURN NEW; END$$;`)
	out, _, code := run(t, "", "diff", "--source", src.URL, "--target", dst.URL)
	if code != 1 {
		t.Fatalf("diff exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		"index public.idx_actor_last_name: missing on target",
		"column public.film.rental_rate: different",
		"trigger public.city.last_updated: missing on target",
		"column public.city.last_update: different",
		"function public.last_updated(): different",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff output lacks %q:\n%s", want, out)
		}
	}
	js, _, code := run(t, "", "diff", "--source", src.URL, "--target", dst.URL, "--json")
	if code != 1 || !strings.Contains(js, `"same": false`) || !strings.Contains(js, `"kind": "index"`) {
		t.Errorf("diff --json exit %d:\n%s", code, js)
	}
}
