package capture

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// partitionedDDL is a partitioned table with two partitions, for the version-dependent trigger paths.
const partitionedDDL = `CREATE TABLE public.ev (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.ev_a PARTITION OF public.ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE public.ev_b PARTITION OF public.ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');`

// captureEnabled returns tgenabled of the row capture trigger on ev and each of its partitions.
func captureEnabled(t *testing.T, conn *pgx.Conn) map[string]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT c.relname::text, t.tgenabled::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
  WHERE t.tgname = $1 AND c.relname LIKE 'ev%'`, TriggerName(DefaultSchema))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	var rel, en string
	if _, err := pgx.ForEachRow(rows, []any{&rel, &en}, func() error { m[rel] = en; return nil }); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestInstallEnablesPartitionTriggers: the owner's install makes the row trigger of a partitioned
// table ENABLE ALWAYS, so writes under session_replication_role = replica are captured. From 13
// ALTER TABLE reaches every clone on the partitions. On 11 and 12 the clones are system triggers:
// a non-superuser alters the parent alone (ALTER TABLE ONLY, the old branch) and is warned that the
// existing partitions stay ENABLE ORIGIN, while partitions created later inherit ENABLE ALWAYS; a
// superuser's install reaches every partition there too.
func TestInstallEnablesPartitionTriggers(t *testing.T) {
	for _, super := range []bool{false, true} {
		t.Run(fmt.Sprintf("superuser=%v", super), func(t *testing.T) {
			db := newOwnerDB(t, partitionedDDL)
			ctx := context.Background()
			conn := db.Conn(t, db.Owner)
			if super {
				var err error
				if conn, err = pgx.Connect(ctx, db.URL); err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
			}
			only := db.Cluster.Version < 130000 && !super
			var dry, progress bytes.Buffer
			if _, err := Install(ctx, conn, InstallOptions{DryRun: &dry}); err != nil {
				t.Fatal(err)
			}
			want := `ALTER TABLE "public"."ev" ENABLE ALWAYS TRIGGER "pgferry_capture";`
			if only {
				want = `ALTER TABLE ONLY "public"."ev" ENABLE ALWAYS TRIGGER "pgferry_capture";`
			}
			if !strings.Contains(dry.String(), want+"\n") {
				t.Fatalf("server %d, superuser %v: dry run lacks %s:\n%s", db.Cluster.Version, super, want, dry.String())
			}
			if _, err := Install(ctx, conn, InstallOptions{Progress: &progress}); err != nil {
				t.Fatal(err)
			}
			if warned := strings.Contains(progress.String(), "stays ENABLE ORIGIN"); warned != only {
				t.Errorf("server %d, superuser %v: warned about ENABLE ORIGIN partitions = %v:\n%s", db.Cluster.Version, super, warned, progress.String())
			}
			db.ExecAs(t, db.Owner, `CREATE TABLE public.ev_c PARTITION OF public.ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`)
			existing := "A"
			if only {
				existing = "O"
			}
			wantEnabled := map[string]string{"ev": "A", "ev_a": existing, "ev_b": existing, "ev_c": "A"}
			if got := captureEnabled(t, conn); fmt.Sprint(got) != fmt.Sprint(wantEnabled) {
				t.Errorf("server %d, superuser %v: tgenabled = %v, want %v", db.Cluster.Version, super, got, wantEnabled)
			}
			// A replica-mode write is captured exactly where the trigger is ENABLE ALWAYS.
			db.Exec(t, `SET session_replication_role = replica; INSERT INTO public.ev VALUES (1, '2024-05-01'), (2, '2026-05-01')`)
			var got []string
			for _, r := range deltaRows(t, conn, DefaultSchema) {
				got = append(got, strings.Join(strings.Fields(r)[:2], " "))
			}
			wantRows := []string{"public.ev 1|2024-05-01", "public.ev 2|2026-05-01"}
			if only {
				wantRows = wantRows[1:]
			}
			if strings.Join(got, ",") != strings.Join(wantRows, ",") {
				t.Errorf("server %d, superuser %v: replica-mode writes captured %v, want %v", db.Cluster.Version, super, got, wantRows)
			}
		})
	}
}

// TestRemoveDropsClonesWithTheirParent: remove drops a partitioned table's row trigger on the
// table itself, which takes its clones along (dropping a clone directly is refused), and every
// partition's own TRUNCATE trigger. Clones are told apart by tgparentid from 13; 11 and 12 have no
// tgparentid, and their clones are internal (the old branch).
func TestRemoveDropsClonesWithTheirParent(t *testing.T) {
	db := newOwnerDB(t, partitionedDDL)
	ctx := context.Background()
	conn := db.Conn(t, db.Owner)
	if _, err := Install(ctx, conn, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	var dry bytes.Buffer
	if err := Remove(ctx, conn, DefaultSchema, RemoveOptions{DryRun: &dry}); err != nil {
		t.Fatalf("server %d: %v", db.Cluster.Version, err)
	}
	var drops []string
	for _, l := range strings.Split(dry.String(), "\n") {
		if strings.HasPrefix(l, "DROP TRIGGER ") {
			drops = append(drops, l)
		}
	}
	sort.Strings(drops)
	want := []string{
		`DROP TRIGGER IF EXISTS "pgferry_capture" ON public.ev;`,
		`DROP TRIGGER IF EXISTS "pgferry_truncate" ON public.ev;`,
		`DROP TRIGGER IF EXISTS "pgferry_truncate" ON public.ev_a;`,
		`DROP TRIGGER IF EXISTS "pgferry_truncate" ON public.ev_b;`,
	}
	if strings.Join(drops, "\n") != strings.Join(want, "\n") {
		t.Fatalf("server %d: remove would run\n%s\nwant\n%s", db.Cluster.Version, strings.Join(drops, "\n"), strings.Join(want, "\n"))
	}
	if err := Remove(ctx, conn, DefaultSchema, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_trigger WHERE tgrelid::regclass::text LIKE 'ev%'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d triggers left on ev and its partitions (%v)", n, err)
	}
}
