package delta

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/pgtest"
)

// copyTable copies a table from src to dst in one snapshot taken now, as 'pgcopyout -t T |
// pgcopyin' does for a table the target holds empty.
func copyTable(t *testing.T, src, dst *pgtest.DB, schema, name string) {
	t.Helper()
	ctx := context.Background()
	tx, err := connect(t, src.URL).BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	tb := pgx.Identifier{schema, name}
	rows, err := tx.Query(ctx, "SELECT * FROM "+tb.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, f := range rows.FieldDescriptions() {
		cols = append(cols, f.Name)
	}
	data, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, dst.URL).CopyFrom(ctx, tb, cols, pgx.CopyFromRows(data)); err != nil {
		t.Fatal(err)
	}
}

// TestSyncStopsOnNewTable: a table created in a captured schema after install stops the follower
// with exit 3 naming it, before any of its rows could be missed silently; the repair the hint
// names (create it on the target, pgtrig install -t, copy it, its key, re-run) reaches equality of
// every table, and the follower resumes, the other table following all along. A table then left
// out with 'pgtrig ignore' no longer stops it.
func TestSyncStopsOnNewTable(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	schema := `CREATE TABLE public.a(id int PRIMARY KEY, v text);`
	src.Exec(t, schema+`INSERT INTO public.a SELECT g, 'a' FROM generate_series(1, 50) g`)
	dst.Exec(t, schema)
	installCapture(t, src.URL)
	snapshotCopy(t, src.URL, dst.URL, []string{"public.a"})
	if err := ddlSync(t, src, dst); err != nil {
		t.Fatal(err)
	}
	newTable := `CREATE TABLE public.n(id int, v text)`
	src.Exec(t, newTable+`; INSERT INTO public.n SELECT g, 'before capture' FROM generate_series(1, 40) g; ALTER TABLE public.n ADD PRIMARY KEY (id);
UPDATE public.a SET v = 'a1' WHERE id < 10`)
	err := ddlSync(t, src, dst)
	var ee *cliutil.ExitError
	if !errors.As(err, &ee) || ee.Code != capture.ExitSchemaChanged {
		t.Fatalf("sync after CREATE TABLE: %v; want exit code %d", err, capture.ExitSchemaChanged)
	}
	if !strings.Contains(err.Error(), "public.n: created after capture was installed: its rows are not captured") {
		t.Errorf("message %q does not name the new table", err)
	}
	for _, w := range []string{"pgschema dump --source SOURCE --section pre-data -t public.n | pgschema apply --target TARGET",
		"pgtrig install --source SOURCE -t public.n", "pgcopyout --source SOURCE -t public.n | pgcopyin --target TARGET",
		"pgschema dump --source SOURCE --section indexes -t public.n | pgschema apply --target TARGET", "pgtrig ignore --source SOURCE -t public.n"} {
		if !strings.Contains(ee.Hint, w) {
			t.Errorf("hint %q does not say %q", ee.Hint, w)
		}
	}

	// The repair, step by step: [1] the table on the target (pre-data: no key yet), [2] capture,
	// writes while nothing is copied yet, [3] the copy, [4] its key, then the follower again.
	ctx := context.Background()
	dst.Exec(t, newTable)
	if _, err := capture.Install(ctx, connect(t, src.URL), capture.InstallOptions{Schema: "pgferry", Filter: catalog.Filter{Tables: []string{"public.n"}}}); err != nil {
		t.Fatalf("pgtrig install -t public.n: %v", err)
	}
	src.Exec(t, `UPDATE public.n SET v = 'captured' WHERE id < 5; DELETE FROM public.n WHERE id > 35; UPDATE public.a SET v = 'a2' WHERE id > 40`)
	copyTable(t, src, dst, "public", "n")
	src.Exec(t, `INSERT INTO public.n VALUES (100, 'after copy'); UPDATE public.n SET v = 'after copy' WHERE id = 10; DELETE FROM public.a WHERE id = 7`)
	dst.Exec(t, `ALTER TABLE public.n ADD PRIMARY KEY (id)`)
	if err := ddlSync(t, src, dst); err != nil {
		t.Fatalf("sync after the repair: %v", err)
	}
	pgtest.RequireSameData(t, src.URL, dst.URL, "pgferry")
	src.Exec(t, `UPDATE public.n SET v = 'followed' WHERE id < 20; UPDATE public.a SET v = 'followed' WHERE id < 20`)
	if err := ddlSync(t, src, dst); err != nil {
		t.Fatalf("sync after the repair: %v", err)
	}
	pgtest.RequireSameData(t, src.URL, dst.URL, "pgferry")

	// Not wanted on the target: ignored, the follower carries on (the table stays on the source only).
	src.Exec(t, `CREATE TABLE public.scratch(id int PRIMARY KEY)`)
	requireNewTableStop(t, ddlSync(t, src, dst), "public.scratch")
	if err := capture.Ignore(ctx, connect(t, src.URL), "pgferry", catalog.Filter{Tables: []string{"public.scratch"}}); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, `INSERT INTO public.scratch VALUES (1); UPDATE public.a SET v = 'after ignore' WHERE id = 1`)
	if err := ddlSync(t, src, dst); err != nil {
		t.Fatalf("sync after ignore: %v", err)
	}
	src.Exec(t, `DROP TABLE public.scratch`)
	pgtest.RequireSameData(t, src.URL, dst.URL, "pgferry")
}

func requireNewTableStop(t *testing.T, err error, table string) {
	t.Helper()
	var ee *cliutil.ExitError
	if !errors.As(err, &ee) || ee.Code != capture.ExitSchemaChanged || !strings.Contains(err.Error(), table+": created after capture was installed") {
		t.Fatalf("sync: %v; want exit code %d naming %s as new", err, capture.ExitSchemaChanged, table)
	}
}
