package delta

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/pgtest"
)

// ddlSync runs one catch-up to the present (no follow) from the target's position.
func ddlSync(t *testing.T, src, dst *pgtest.DB) error {
	t.Helper()
	return syncURLs(t, src.URL, dst.URL, "")
}

// recopy is the repair a drift error names: re-capture the tables with Force, then copy them
// again into their emptied target tables (as pgcopyout -t T | pgcopyin --truncate does).
func recopy(t *testing.T, src, dst *pgtest.DB, tables ...string) {
	t.Helper()
	ctx := context.Background()
	if _, err := capture.Install(ctx, connect(t, src.URL), capture.InstallOptions{Schema: "pgferry", Force: true,
		Filter: catalog.Filter{Tables: tables}}); err != nil {
		t.Fatalf("repair install: %v", err)
	}
	s, d := connect(t, src.URL), connect(t, dst.URL)
	for _, tb := range tables {
		var buf strings.Builder
		if _, err := s.PgConn().CopyTo(ctx, &buf, "COPY (SELECT * FROM "+tb+") TO STDOUT"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(ctx, "TRUNCATE "+tb); err != nil {
			t.Fatal(err)
		}
		if _, err := d.PgConn().CopyFrom(ctx, strings.NewReader(buf.String()), "COPY "+tb+" FROM STDIN"); err != nil {
			t.Fatal(err)
		}
	}
}

// requireDriftStop checks err is the schema-change stop: exit code 3, naming every table in
// want and what changed, with the repair command.
func requireDriftStop(t *testing.T, err error, want ...string) {
	t.Helper()
	var ee *cliutil.ExitError
	if !errors.As(err, &ee) || ee.Code != capture.ExitSchemaChanged {
		t.Fatalf("sync after the DDL: %v; want exit code %d", err, capture.ExitSchemaChanged)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message %q does not say %q", err, w)
		}
	}
	if !strings.Contains(ee.Hint, "pgtrig install --force") || !strings.Contains(ee.Hint, "pgcopyin --target TARGET --truncate") {
		t.Errorf("hint %q does not name the repair", ee.Hint)
	}
}

// TestSyncStopsOnRecreatedTableAndDisabledTrigger: a table dropped and re-created under the same
// name, and a table whose triggers were disabled (DISABLE TRIGGER USER, then ALL) stop the
// follower with exit 3 naming both; the repair it names reaches equality, the other table
// following all along.
func TestSyncStopsOnRecreatedTableAndDisabledTrigger(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	schema := `CREATE TABLE public.a(id int PRIMARY KEY, v text); CREATE TABLE public.b(id int PRIMARY KEY, v text);
CREATE TABLE public.c(id int PRIMARY KEY, v text); CREATE TABLE public.d(id int PRIMARY KEY, v text);`
	src.Exec(t, schema+`INSERT INTO public.a SELECT g, 'a' FROM generate_series(1, 50) g; INSERT INTO public.b SELECT g, 'b' FROM generate_series(1, 50) g;
INSERT INTO public.c SELECT g, 'c' FROM generate_series(1, 50) g; INSERT INTO public.d SELECT g, 'd' FROM generate_series(1, 50) g;`)
	dst.Exec(t, schema)
	installCapture(t, src.URL)
	snapshotCopy(t, src.URL, dst.URL, []string{"public.a", "public.b", "public.c", "public.d"})
	src.Exec(t, `UPDATE public.a SET v = 'a1' WHERE id < 10; DELETE FROM public.b WHERE id > 45`)
	if err := ddlSync(t, src, dst); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, `DROP TABLE public.b; CREATE TABLE public.b(id int PRIMARY KEY, v text); INSERT INTO public.b SELECT g, 'new b' FROM generate_series(1, 30) g;
ALTER TABLE public.c DISABLE TRIGGER USER; UPDATE public.c SET v = 'unseen' WHERE id < 20;
ALTER TABLE public.d DISABLE TRIGGER ALL; DELETE FROM public.d WHERE id < 5; ALTER TABLE public.d ENABLE TRIGGER ALL;
ALTER TABLE public.d DISABLE TRIGGER ALL; UPDATE public.a SET v = 'a2' WHERE id > 40`)
	err := ddlSync(t, src, dst)
	requireDriftStop(t, err, "public.b: dropped and re-created", "public.c: capture trigger(s)", "disabled (ALTER TABLE ... DISABLE TRIGGER)", "public.d")
	if install, err := capture.Install(context.Background(), connect(t, src.URL), capture.InstallOptions{Schema: "pgferry"}); err == nil {
		t.Fatalf("install without --force re-captured drifted tables silently: %+v", install.Installed)
	} else {
		requireDriftStop(t, err, "public.b", "public.c")
	}
	src.Exec(t, `UPDATE public.a SET v = 'a3' WHERE id = 1`)
	recopy(t, src, dst, "public.b", "public.c", "public.d")
	src.Exec(t, `UPDATE public.b SET v = 'after repair' WHERE id = 3; UPDATE public.c SET v = 'after repair' WHERE id = 3`)
	if err := ddlSync(t, src, dst); err != nil {
		t.Fatalf("sync after the repair: %v", err)
	}
	pgtest.RequireSameData(t, src.URL, dst.URL, "pgferry")
}

// TestSyncPartitions: rows of a table ATTACHed as a partition (never seen by a trigger) are
// loaded in the batch; a partition created after install gets the TRUNCATE capture before the
// next batch, so its TRUNCATE reaches the target; a DETACH on the source only is followed: the
// target detaches it too and both parents and both standalone tables end equal (more in
// detach_test.go).
func TestSyncPartitions(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	schema := `CREATE TABLE public.ev(id int, part int, v text, PRIMARY KEY (id, part)) PARTITION BY LIST (part);
CREATE TABLE public.ev_0 PARTITION OF public.ev FOR VALUES IN (0); CREATE TABLE public.ev_1 PARTITION OF public.ev FOR VALUES IN (1);`
	src.Exec(t, schema+`INSERT INTO public.ev SELECT g, g % 2, 'e' FROM generate_series(1, 100) g`)
	dst.Exec(t, schema)
	installCapture(t, src.URL)
	snapshotCopy(t, src.URL, dst.URL, []string{"public.ev"})
	// The operator applies the same DDL on the target; the rows are pgdelta's job.
	ddl := `CREATE TABLE public.ev_2 (LIKE public.ev); ALTER TABLE public.ev ATTACH PARTITION public.ev_2 FOR VALUES IN (2);
CREATE TABLE public.ev_3 PARTITION OF public.ev FOR VALUES IN (3);`
	dst.Exec(t, ddl)
	src.Exec(t, `CREATE TABLE public.ev_2 (LIKE public.ev); INSERT INTO public.ev_2 SELECT g, 2, 'attached' FROM generate_series(1, 40) g;`)
	src.Exec(t, `ALTER TABLE public.ev ATTACH PARTITION public.ev_2 FOR VALUES IN (2);
CREATE TABLE public.ev_3 PARTITION OF public.ev FOR VALUES IN (3); INSERT INTO public.ev_3 SELECT g, 3, 'new' FROM generate_series(1, 30) g;
UPDATE public.ev SET v = 'u' WHERE id < 5`)
	if err := ddlSync(t, src, dst); err != nil {
		t.Fatal(err)
	}
	pgtest.RequireSameData(t, src.URL, dst.URL, "pgferry")
	src.Exec(t, `TRUNCATE public.ev_3; INSERT INTO public.ev_3 VALUES (1000, 3, 'after truncate')`)
	if err := ddlSync(t, src, dst); err != nil {
		t.Fatal(err)
	}
	pgtest.RequireSameData(t, src.URL, dst.URL, "pgferry")

	src.Exec(t, `UPDATE public.ev SET v = 'before detach' WHERE part = 0 AND id < 50; ALTER TABLE public.ev DETACH PARTITION public.ev_0`)
	if err := ddlSync(t, src, dst); err != nil {
		t.Fatalf("sync after the detach: %v", err)
	}
	pgtest.RequireSameData(t, src.URL, dst.URL, "pgferry")
	var parent *string
	if err := connect(t, dst.URL).QueryRow(context.Background(), "SELECT (SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = 'public.ev_0'::regclass)").Scan(&parent); err != nil || parent != nil {
		t.Errorf("public.ev_0 on the target: parent %v (%v), want detached", parent, err)
	}
}
