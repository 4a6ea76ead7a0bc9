package capture

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/pgver"
)

// inUserSchema is the condition that namespace oid column col is a user schema.
func inUserSchema(col string) string {
	return col + ` IN (SELECT oid FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema')`
}

// catalogSQL lists the definitions pg_dump --schema-only shows of a database's user schemas:
// schemas, relations, columns, constraints, indexes, triggers with their firing state, functions
// and types, with owners and privileges; every server version has these catalogs and functions.
var catalogSQL = `SELECT 'schema ' || nspname || ' ' || pg_get_userbyid(nspowner) || ' ' || coalesce(nspacl::text, '') FROM pg_namespace WHERE ` + inUserSchema("oid") + `
UNION ALL SELECT 'rel ' || oid::regclass::text || ' ' || relkind::text || relpersistence::text || ' ' || pg_get_userbyid(relowner) || ' ' ||
  coalesce(relacl::text, '') || coalesce(reloptions::text, '') FROM pg_class WHERE ` + inUserSchema("relnamespace") + `
UNION ALL SELECT 'col ' || a.attrelid::regclass::text || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' ||
  a.attnotnull::text || a.attidentity::text || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE a.attnum > 0 AND NOT a.attisdropped AND ` + inUserSchema("c.relnamespace") + `
UNION ALL SELECT 'con ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE ` + inUserSchema("connamespace") + `
UNION ALL SELECT 'idx ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE ` + inUserSchema("c.relnamespace") + `
UNION ALL SELECT 'trg ' || t.tgrelid::regclass::text || ' ' || t.tgname || ' ' || t.tgenabled::text || ' ' || CASE WHEN t.tgisinternal THEN '' ELSE pg_get_triggerdef(t.oid) END
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE ` + inUserSchema("c.relnamespace") + `
UNION ALL SELECT 'fn ' || oid::regprocedure::text || ' ' || pg_get_userbyid(proowner) || ' ' || coalesce(proacl::text, '') || ' ' || md5(prosrc)
  FROM pg_proc WHERE ` + inUserSchema("pronamespace") + `
UNION ALL SELECT 'type ' || format_type(oid, NULL) || ' ' || pg_get_userbyid(typowner) FROM pg_type WHERE ` + inUserSchema("typnamespace") + `
ORDER BY 1`

// schemaText returns the database's schema as text: pg_dump --schema-only when the machine's
// pg_dump can dump this server (it refuses a newer one), else the catalog's definitions.
func schemaText(t *testing.T, url string, serverMajor int) string {
	t.Helper()
	if pgDumpMajor(t) >= serverMajor {
		return pgDumpSchema(t, url)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, catalogSQL)
	if err != nil {
		t.Fatalf("read catalog: %v", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("read catalog: %v", err)
	}
	return strings.Join(lines, "\n")
}

// pgDumpMajor is the major version of the machine's pg_dump ("pg_dump (PostgreSQL) 15.18 (Debian ...)").
func pgDumpMajor(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("pg_dump", "--version").Output()
	if err != nil {
		t.Fatalf("pg_dump --version: %v", err)
	}
	_, ver, _ := strings.Cut(strings.TrimSpace(string(out)), ") ")
	v, err := pgver.Parse(ver)
	if err != nil {
		t.Fatalf("pg_dump --version: %v", err)
	}
	return v.Major()
}

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
// leaves pg_dump --schema-only (or, for a server newer than pg_dump, the catalog's definitions)
// exactly as before, and that a re-run is idempotent.
func TestInstallRemoveLeavesCatalog(t *testing.T) {
	db := newOwnerDB(t, workloadSchema+`
CREATE TABLE public.parent (id int PRIMARY KEY, v text);
CREATE TABLE public.child (extra text) INHERITS (public.parent);
ALTER TABLE public.child ADD PRIMARY KEY (id);
CREATE TABLE public.nokey (a int, b text);
CREATE TABLE public.nocols ();`)
	ctx := context.Background()
	url := db.URLAs(db.Owner)
	before := schemaText(t, url, db.Cluster.Major())
	owner := db.Conn(t, db.Owner)

	// A table that cannot be captured (no key, no columns) refuses the install, and nothing is created.
	_, err := Install(ctx, owner, InstallOptions{})
	if err == nil || !strings.Contains(err.Error(), "public.nocols") || strings.Contains(err.Error(), "public.nokey") {
		t.Fatalf("install with a table without columns: err = %v", err)
	}
	if ok, _ := SchemaExists(ctx, owner, DefaultSchema); ok {
		t.Fatal("refused install left a capture schema behind")
	}

	var dry bytes.Buffer
	f := catalog.Filter{ExcludeTables: []string{"nocols"}}
	if _, err := Install(ctx, owner, InstallOptions{Filter: f, DryRun: &dry}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dry.String(), `CREATE TRIGGER "pgferry_capture_upd" AFTER UPDATE ON "App Data"."Line Items" REFERENCING NEW TABLE AS pgferry_new FOR EACH STATEMENT`) ||
		!strings.Contains(dry.String(), `CREATE TRIGGER "pgferry_capture" AFTER INSERT OR UPDATE OR DELETE ON "public"."ev" FOR EACH ROW`) ||
		!strings.Contains(dry.String(), `CREATE TRIGGER "pgferry_capture" AFTER INSERT OR UPDATE OR DELETE ON "public"."child" FOR EACH ROW`) ||
		!strings.Contains(dry.String(), `CREATE TRIGGER "pgferry_capture_upd" AFTER UPDATE ON "public"."nokey" REFERENCING OLD TABLE AS pgferry_old NEW TABLE AS pgferry_new FOR EACH STATEMENT`) ||
		!strings.Contains(dry.String(), "SET LOCAL lock_timeout = '2000ms'") {
		t.Fatalf("dry run SQL:\n%s", dry.String())
	}
	if got := schemaText(t, url, db.Cluster.Major()); got != before {
		t.Fatalf("dry run changed the catalog:\n%s\n----\n%s", before, got)
	}

	res, err := Install(ctx, owner, InstallOptions{Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Installed) != 6 {
		t.Fatalf("installed %v, want 6 tables", res.Installed)
	}
	res, err = Install(ctx, owner, InstallOptions{Filter: f})
	if err != nil || len(res.Installed) != 0 || len(res.Tables) != 6 {
		t.Fatalf("re-run: %+v, %v", res, err)
	}
	if snap, err := Mark(ctx, owner, DefaultSchema); err != nil || !strings.Contains(snap, ":") {
		t.Fatalf("mark = %q, %v", snap, err)
	}
	if err := Remove(ctx, owner, DefaultSchema, RemoveOptions{LockTimeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	after := schemaText(t, url, db.Cluster.Major())
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
