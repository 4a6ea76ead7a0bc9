package capture

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/catalog"
)

func pgDumpSchema(t *testing.T, url string) string {
	t.Helper()
	out, err := exec.Command("pg_dump", "--schema-only", "--no-comments", "-d", url).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	// pg_dump 15.14+ frames the dump with a random \restrict key: drop those lines.
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, `\restrict `) && !strings.HasPrefix(l, `\unrestrict `) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestInstallRemoveLeavesCatalog shows that install then remove, as the owning ordinary role,
// leaves pg_dump --schema-only exactly as before, and that a re-run is idempotent.
func TestInstallRemoveLeavesCatalog(t *testing.T) {
	db := newOwnerDB(t, workloadSchema+`
CREATE TABLE public.parent (id int PRIMARY KEY, v text);
CREATE TABLE public.child (extra text) INHERITS (public.parent);
ALTER TABLE public.child ADD PRIMARY KEY (id);
CREATE TABLE public.nokey (a int, b text);`)
	ctx := context.Background()
	url := db.URLAs(db.Owner)
	before := pgDumpSchema(t, url)
	owner := db.Conn(t, db.Owner)

	// A table without a usable key refuses the install, and nothing is created.
	_, err := Install(ctx, owner, InstallOptions{})
	if err == nil || !strings.Contains(err.Error(), "public.nokey") {
		t.Fatalf("install with a keyless table: err = %v", err)
	}
	if ok, _ := SchemaExists(ctx, owner, DefaultSchema); ok {
		t.Fatal("refused install left a capture schema behind")
	}

	var dry bytes.Buffer
	f := catalog.Filter{ExcludeTables: []string{"nokey"}}
	if _, err := Install(ctx, owner, InstallOptions{Filter: f, DryRun: &dry}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dry.String(), `CREATE TRIGGER "pgferry_capture_upd" AFTER UPDATE ON "App Data"."Line Items" REFERENCING NEW TABLE AS pgferry_new FOR EACH STATEMENT`) ||
		!strings.Contains(dry.String(), `CREATE TRIGGER "pgferry_capture" AFTER INSERT OR UPDATE OR DELETE ON "public"."ev" FOR EACH ROW`) ||
		!strings.Contains(dry.String(), `CREATE TRIGGER "pgferry_capture" AFTER INSERT OR UPDATE OR DELETE ON "public"."child" FOR EACH ROW`) ||
		!strings.Contains(dry.String(), "SET LOCAL lock_timeout = '2000ms'") {
		t.Fatalf("dry run SQL:\n%s", dry.String())
	}
	if got := pgDumpSchema(t, url); got != before {
		t.Fatalf("dry run changed the catalog:\n%s\n----\n%s", before, got)
	}

	res, err := Install(ctx, owner, InstallOptions{Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Installed) != 5 {
		t.Fatalf("installed %v, want 5 tables", res.Installed)
	}
	res, err = Install(ctx, owner, InstallOptions{Filter: f})
	if err != nil || len(res.Installed) != 0 || len(res.Tables) != 5 {
		t.Fatalf("re-run: %+v, %v", res, err)
	}
	if snap, err := Mark(ctx, owner, DefaultSchema); err != nil || !strings.Contains(snap, ":") {
		t.Fatalf("mark = %q, %v", snap, err)
	}
	if err := Remove(ctx, owner, DefaultSchema, RemoveOptions{LockTimeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	after := pgDumpSchema(t, url)
	if after != before {
		t.Fatalf("catalog differs after install and remove:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Removing again is a no-op.
	if err := Remove(ctx, owner, DefaultSchema, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestRemoveKeepsForeignObjects: an object pgtrig did not create stops the schema drop, untouched.
func TestRemoveKeepsForeignObjects(t *testing.T) {
	db := newOwnerDB(t, `CREATE TABLE public.t (id int PRIMARY KEY)`)
	ctx := context.Background()
	owner := db.Conn(t, db.Owner)
	if _, err := Install(ctx, owner, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	db.ExecAs(t, db.Owner, `CREATE TABLE pgferry.mine (x int); INSERT INTO pgferry.mine VALUES (1)`)
	err := Remove(ctx, owner, DefaultSchema, RemoveOptions{LockTimeout: time.Second, Retries: -1})
	if err == nil {
		t.Fatal("remove dropped a schema holding a foreign table")
	}
	var n int
	if err := owner.QueryRow(ctx, "SELECT count(*) FROM pgferry.mine").Scan(&n); err != nil || n != 1 {
		t.Fatalf("foreign table: n=%d err=%v", n, err)
	}
	var trig int
	owner.QueryRow(ctx, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.t'::regclass").Scan(&trig)
	if trig != 0 {
		t.Fatalf("%d capture triggers left on public.t", trig)
	}
}

// TestRemoveInterruptedKeepsRegistryHonest: when remove stops half-way (a lock not granted),
// every table still listed in the registry still has its triggers, and a re-run finishes.
func TestRemoveInterruptedKeepsRegistryHonest(t *testing.T) {
	db := newOwnerDB(t, `CREATE TABLE public.a (id int PRIMARY KEY); CREATE TABLE public.b (id int PRIMARY KEY)`)
	ctx := context.Background()
	conn := db.Conn(t, db.Owner)
	holder := db.Conn(t, db.Owner)
	if _, err := Install(ctx, conn, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "BEGIN; LOCK TABLE public.b IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	err := Remove(ctx, conn, DefaultSchema, RemoveOptions{LockTimeout: 100 * time.Millisecond, Retries: -1})
	holder.Exec(ctx, "ROLLBACK")
	if err == nil {
		t.Fatal("remove succeeded while public.b was locked")
	}
	reg, err := LoadRegistry(ctx, conn, DefaultSchema)
	if err != nil {
		t.Fatal(err)
	}
	if len(reg) != 1 || reg[0].Table.Key() != "public.b" {
		t.Fatalf("registry after an interrupted remove = %+v, want only public.b", reg)
	}
	var n int
	conn.QueryRow(ctx, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.b'::regclass").Scan(&n)
	if n == 0 {
		t.Fatal("public.b is listed but has no triggers")
	}
	if err := Remove(ctx, conn, DefaultSchema, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
}
