package capture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/cliutil"
)

// wantDrift is what TestDetectDrift's DDL must be reported as, each line a prefix.
var wantDrift = []string{
	"public.cols columns: columns changed (added w)",
	"public.dropped dropped: dropped (no table of that name any more)",
	"public.ev partition_detached: partition public.ev_1 detached or dropped: the target still holds its rows",
	"public.ev partition_detached: partition public.ev_2 detached or dropped: the target still holds its rows",
	"public.keyless columns: columns changed (added c)",
	"public.notrig trigger_missing: capture trigger(s) pgferry_capture_ins dropped: changes since were not captured",
	"public.off_all trigger_disabled: capture trigger(s) pgferry_capture_ins, pgferry_capture_upd, pgferry_capture_del, pgferry_capture_key, pgferry_truncate disabled",
	"public.off_one trigger_disabled: capture trigger(s) pgferry_truncate disabled",
	"public.off_user trigger_disabled: capture trigger(s) pgferry_capture_ins, pgferry_capture_upd, pgferry_capture_del, pgferry_capture_key, pgferry_truncate disabled",
	"public.pv trigger_disabled: TRUNCATE capture on partition public.pv_0 is disabled",
	"public.pv trigger_disabled: capture trigger on partition public.pv_0 is disabled or missing",
	"public.recreated recreated: dropped and re-created",
	"public.retyped columns: columns changed (retyped v)",
}

// wantDriftOn is wantDrift as the server behaves: before PostgreSQL 15 a partition's clone of
// the row trigger is internal, so DISABLE TRIGGER USER on the partition leaves it enabled (and
// capture working), and then no drift is due for it.
func wantDriftOn(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	var state string
	if err := conn.QueryRow(context.Background(), "SELECT tgenabled::text FROM pg_trigger WHERE tgrelid = 'public.pv_0'::regclass AND tgname = 'pgferry_capture'").Scan(&state); err != nil {
		t.Fatal(err)
	}
	if state == "D" {
		return wantDrift
	}
	return slices.DeleteFunc(slices.Clone(wantDrift), func(s string) bool { return strings.Contains(s, "capture trigger on partition public.pv_0") })
}

// TestDetectDrift: each DDL that capture cannot follow is detected by polling the catalog, with
// the table and what changed; install refuses to hide them (exit 3) until --force, after which
// nothing drifts.
func TestDetectDrift(t *testing.T) {
	db := newOwnerDB(t, `CREATE TABLE public.same (id int PRIMARY KEY);
CREATE TABLE public.recreated (id int PRIMARY KEY); CREATE TABLE public.dropped (id int PRIMARY KEY);
CREATE TABLE public.cols (id int PRIMARY KEY, v int); CREATE TABLE public.retyped (id int PRIMARY KEY, v int);
CREATE TABLE public.off_user (id int PRIMARY KEY); CREATE TABLE public.off_all (id int PRIMARY KEY);
CREATE TABLE public.off_one (id int PRIMARY KEY); CREATE TABLE public.notrig (id int PRIMARY KEY);
CREATE TABLE public.keyless (a int, b text);
CREATE TABLE public.ev (id int, p int, PRIMARY KEY (id, p)) PARTITION BY LIST (p);
CREATE TABLE public.ev_0 PARTITION OF public.ev FOR VALUES IN (0); CREATE TABLE public.ev_1 PARTITION OF public.ev FOR VALUES IN (1);
CREATE TABLE public.ev_2 PARTITION OF public.ev FOR VALUES IN (2);
CREATE TABLE public.pv (id int, p int, PRIMARY KEY (id, p)) PARTITION BY LIST (p);
CREATE TABLE public.pv_0 PARTITION OF public.pv FOR VALUES IN (0);`)
	ctx := context.Background()
	conn := db.Conn(t, db.Owner)
	if _, err := Install(ctx, conn, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if d, err := DetectDrift(ctx, conn, ""); err != nil || len(d) != 0 {
		t.Fatalf("drift right after install: %v, %v", d, err)
	}
	db.ExecAs(t, db.Owner, `DROP TABLE public.recreated; CREATE TABLE public.recreated (id int PRIMARY KEY);
DROP TABLE public.dropped; ALTER TABLE public.cols ADD COLUMN w text; ALTER TABLE public.retyped ALTER COLUMN v TYPE bigint;
ALTER TABLE public.off_user DISABLE TRIGGER USER; ALTER TABLE public.off_all DISABLE TRIGGER ALL;
ALTER TABLE public.off_one DISABLE TRIGGER pgferry_truncate; DROP TRIGGER pgferry_capture_ins ON public.notrig;
ALTER TABLE public.keyless ADD COLUMN c int;
ALTER TABLE public.ev DETACH PARTITION public.ev_1; DROP TABLE public.ev_2; ALTER TABLE public.pv_0 DISABLE TRIGGER USER;
CREATE TABLE public.ev_3 PARTITION OF public.ev FOR VALUES IN (3)`)
	d, err := DetectDrift(ctx, conn, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range d {
		got = append(got, fmt.Sprintf("%s %s: %s", x.Table, x.Kind, x.Detail))
	}
	sort.Strings(got)
	want := wantDriftOn(t, conn)
	if len(got) != len(want) {
		t.Errorf("got %d drifts, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range min(len(got), len(want)) {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("drift %d = %q, want it to start %q", i, got[i], want[i])
		}
	}

	// Install without --force: every other table is fine, the drifted ones are named, exit 3.
	_, err = Install(ctx, conn, InstallOptions{})
	var ee *cliutil.ExitError
	var de *DriftError
	if !errors.As(err, &ee) || ee.Code != ExitSchemaChanged || !errors.As(err, &de) {
		t.Fatalf("install over drifted tables: %v; want exit %d", err, ExitSchemaChanged)
	}
	if !strings.Contains(ee.Hint, "pgtrig install --force -t public.cols") || !strings.Contains(ee.Hint, "for public.dropped, gone for good: 'pgtrig install --force' forgets it") {
		t.Fatalf("hint %q", ee.Hint)
	}
	var log strings.Builder
	if _, err := Install(ctx, conn, InstallOptions{Force: true, Progress: &log}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	// A dropped table's capture is forgotten by install --force.
	if d, err = DetectDrift(ctx, conn, ""); err != nil || len(d) != 0 {
		t.Fatalf("after install --force: %v, %v", d, err)
	}
	if !strings.Contains(log.String(), "public.dropped: dropped since install: its capture is forgotten") {
		t.Fatalf("install --force said nothing of the dropped table:\n%s", log.String())
	}
	// The capture works again on the repaired tables.
	db.ExecAs(t, db.Owner, `INSERT INTO public.off_all VALUES (7); INSERT INTO public.pv VALUES (7, 0); INSERT INTO public.recreated VALUES (7)`)
	for _, tb := range []string{"public.off_all", "public.pv", "public.recreated"} {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pgferry."+DeltaName(relidOf(t, conn, tb))).Scan(&n); err != nil || n != 1 {
			t.Errorf("%s: %d delta rows after the repair, want 1 (%v)", tb, n, err)
		}
	}
}

// TestRegistryFromOlderRelease: a registry written before columns and partitions were recorded
// (a migration in progress when pgferry is upgraded) still reads, drift checks what it can, and
// the next install records them.
func TestRegistryFromOlderRelease(t *testing.T) {
	db := newOwnerDB(t, `CREATE TABLE public.t (id int PRIMARY KEY, v int)`)
	ctx := context.Background()
	conn := db.Conn(t, db.Owner)
	if _, err := Install(ctx, conn, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	db.ExecAs(t, db.Owner, `ALTER TABLE pgferry.capture_tables DROP COLUMN columns, DROP COLUMN partitions, DROP COLUMN keyless; ALTER TABLE public.t ADD COLUMN w int`)
	reg, err := LoadRegistry(ctx, conn, "")
	if err != nil || len(reg) != 1 || reg[0].Columns != nil || reg[0].Partitions != nil {
		t.Fatalf("old registry: %+v, %v", reg, err)
	}
	if d, err := DetectDrift(ctx, conn, ""); err != nil || len(d) != 0 {
		t.Fatalf("drift on an old registry: %v, %v (columns were not recorded, so they cannot be compared)", d, err)
	}
	db.ExecAs(t, db.Owner, `ALTER TABLE public.t DISABLE TRIGGER USER`)
	if d, err := DetectDrift(ctx, conn, ""); err != nil || len(d) == 0 || d[0].Kind != DriftTriggerDisabled {
		t.Fatalf("old registry, disabled trigger: %v, %v", d, err)
	}
	db.ExecAs(t, db.Owner, `ALTER TABLE public.t ENABLE TRIGGER USER`)
	if _, err := Install(ctx, conn, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	db.ExecAs(t, db.Owner, `ALTER TABLE public.t DROP COLUMN w`)
	if d, err := DetectDrift(ctx, conn, ""); err != nil || len(d) != 1 || d[0].Kind != DriftColumns {
		t.Fatalf("after the upgrading install, a dropped column: %v, %v", d, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
