package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// filteredSchema: scratch is left out with -T; the target already holds the rest of the pre-data
// schema (made with 'pgschema dump --section pre-data -T scratch') and its own, different scratch.
const filteredSchema = `
CREATE TABLE public.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);
INSERT INTO public.orders (note) SELECT 'o' || g FROM generate_series(1, 300) g;
CREATE TABLE public.items (id serial PRIMARY KEY, order_id bigint NOT NULL REFERENCES public.orders (id), qty int);
INSERT INTO public.items (order_id, qty) SELECT g, g % 7 FROM generate_series(1, 300) g;
CREATE TABLE public.ev (id int, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.ev_2024 PARTITION OF public.ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO public.ev SELECT g, '2024-03-01' FROM generate_series(1, 100) g;
CREATE TABLE public.scratch (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, junk text);
INSERT INTO public.scratch (junk) SELECT 'x' FROM generate_series(1, 50);
`

// TestMigrateFilteredIntoPreparedTarget: migrate.sh -T scratch into a target that already holds
// tables: the preflight compares the pre-data schema with the same filter and skips the schema
// step; the filter is recorded, so cutover.sh without it uses it (and refuses another one, as
// migrate.sh does); scratch is neither copied, captured, verified nor its sequence set, the
// target's own scratch is left alone, and both scripts say what was left out.
func TestMigrateFilteredIntoPreparedTarget(t *testing.T) {
	requireTools(t)
	t.Parallel()
	m := newEmptyMigration(t, false)
	mustExec(t, m.src, filteredSchema)
	dump := exec.Command("bash", "-c", `pgschema dump --source "$1" --section pre-data -T scratch | psql -XqAt -v ON_ERROR_STOP=1 -d "$2"`, "-", m.src, m.dst)
	if out, err := dump.CombinedOutput(); err != nil {
		t.Fatalf("preparing the target: %v\n%s", err, out)
	}
	mustExec(t, m.dst, `CREATE TABLE public.scratch (local text); INSERT INTO public.scratch VALUES ('mine')`)

	out := m.script(t, 0, "migrate.sh", "-T", "scratch")
	for _, want := range []string{"skipping the schema step", "filters --exclude-table=scratch: 1 table(s) left out, 0 moved without their rows", "ready for cutover"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate.sh did not say %q", want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(m.stateDir, "filters")); err != nil || string(b) != "--exclude-table=scratch\x00" {
		t.Errorf("state dir filters = %q, %v", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(m.stateDir, "excluded.txt")); string(b) != "public.scratch\n" {
		t.Errorf("excluded.txt = %q", b)
	}
	if n := queryInt(t, m.srcSuper, `SELECT count(*) FROM pgferry.capture_tables WHERE table_name = 'public.scratch'`); n != 0 {
		t.Errorf("scratch (-T) is captured")
	}
	if out := m.script(t, 2, "migrate.sh", "-t", "orders"); !strings.Contains(out, "are not this migration's (--exclude-table=scratch") {
		t.Errorf("migrate.sh with other filters was not refused for that reason")
	}

	mustExec(t, m.src, `INSERT INTO public.orders (note) SELECT 'late' FROM generate_series(1, 20);
		INSERT INTO public.items (order_id, qty) SELECT id, 1 FROM public.orders WHERE note = 'late';
		UPDATE public.items SET qty = 99 WHERE id <= 10; INSERT INTO public.ev VALUES (500, '2024-06-01');
		INSERT INTO public.scratch (junk) VALUES ('late')`)
	if out := m.script(t, 2, "cutover.sh", "-T", "other"); !strings.Contains(out, "are not this migration's") || strings.Contains(out, "freeze:") {
		t.Errorf("cutover.sh with other filters was not refused before the freeze")
	}
	cut := m.script(t, 0, "cutover.sh")
	for _, want := range []string{"verify: source and target hold the same rows", "write downtime", "1 table(s) left out"} {
		if !strings.Contains(cut, want) {
			t.Errorf("cutover.sh did not say %q", want)
		}
	}
	for _, tb := range []string{"public.orders", "public.items", "public.ev"} {
		pgtest.RequireSameTable(t, m.srcSuper, m.dstSuper, tb)
	}
	if got := queryString(t, m.dstSuper, `SELECT string_agg(local, ',') FROM public.scratch`); got != "mine" {
		t.Errorf("the target's own scratch holds %q, want only its row 'mine'", got)
	}
	for q, want := range map[string]int64{
		`SELECT count(*) FROM pg_constraint WHERE conname = 'items_order_id_fkey' AND convalidated`: 1,
		`SELECT last_value FROM public.orders_id_seq`:                                               320,
		`SELECT last_value FROM public.items_id_seq`:                                                320,
	} {
		if got := queryInt(t, m.dstSuper, q); got < want {
			t.Errorf("target: %s = %d, want at least %d", q, got, want)
		}
	}
}
