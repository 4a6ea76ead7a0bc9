package capture

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/ident"
)

// driftLines is "table kind" per drift, sorted.
func driftLines(t *testing.T, q Querier) []string {
	t.Helper()
	d, err := DetectDrift(context.Background(), q, "")
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, x := range d {
		out = append(out, x.Table+" "+x.Kind)
	}
	sort.Strings(out)
	return out
}

func requireDrifts(t *testing.T, when string, q Querier, want ...string) {
	t.Helper()
	if got := driftLines(t, q); !slices.Equal(got, want) {
		t.Fatalf("%s: drifts %q, want %q", when, got, want)
	}
}

// TestNewTables: a table created after install in a selected schema is a new_table drift (also in
// pgtrig status), with a repair hint; a table of a schema the install left out, a partition of a
// captured table, a table whose rows --exclude-table-data leaves out, a temporary table and an
// ignored table are not; a partition detached (known at install, or created since) is reported
// as detached, not as new, also after its repair; a second install capturing some new tables (-t) ends their
// drift, not the others', and adds to the first install's selection instead of replacing it.
func TestNewTables(t *testing.T) {
	db := newOwnerDB(t, `CREATE SCHEMA side; CREATE TABLE side.s (id int PRIMARY KEY);
CREATE TABLE public.a (id int PRIMARY KEY); CREATE TABLE public.logs (id int PRIMARY KEY);
CREATE TABLE public.ev (id int, p int, PRIMARY KEY (id, p)) PARTITION BY LIST (p);
CREATE TABLE public.ev_0 PARTITION OF public.ev FOR VALUES IN (0); CREATE TABLE public.ev_1 PARTITION OF public.ev FOR VALUES IN (1);`)
	ctx := context.Background()
	conn := db.Conn(t, db.Owner)
	first := catalog.Filter{Schemas: []string{"public"}, ExcludeTableData: []string{"public.log*"}}
	if _, err := Install(ctx, conn, InstallOptions{Filter: first}); err != nil {
		t.Fatal(err)
	}
	requireDrifts(t, "right after install", conn)
	db.ExecAs(t, db.Owner, `CREATE TABLE public.fresh (id int PRIMARY KEY, v text); INSERT INTO public.fresh VALUES (1, 'x'); CREATE TABLE public.pending (id int PRIMARY KEY);
CREATE TABLE public."Mixed Case" (id int PRIMARY KEY); CREATE TABLE public.scratch (v text);
CREATE TABLE side.fresh (id int PRIMARY KEY); CREATE TABLE public.logs_2 (id int PRIMARY KEY);
CREATE TABLE public.ev_2 PARTITION OF public.ev FOR VALUES IN (2); ALTER TABLE public.ev DETACH PARTITION public.ev_1`)
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE tmp_here (id int)"); err != nil {
		t.Fatal(err)
	}
	requireDrifts(t, "after the DDL", conn, "public.Mixed Case new_table", "public.ev partition_detached", "public.fresh new_table", "public.pending new_table", "public.scratch new_table")

	st, err := GetStatus(ctx, conn, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(st.Drifts, func(d Drift) bool {
		return d.Table == "public.fresh" && d.Kind == DriftNewTable && d.Detail == "created after capture was installed: its rows are not captured"
	}) {
		t.Errorf("status does not report public.fresh as a new table: %+v", st.Drifts)
	}
	var ee *cliutil.ExitError
	if err := DriftFailure("", st.Drifts); !errors.As(err, &ee) || ee.Code != ExitSchemaChanged {
		t.Fatalf("drift failure %v, want exit %d", err, ExitSchemaChanged)
	}
	names := `-t 'public."Mixed Case"' -t public.fresh -t public.pending -t public.scratch`
	for _, w := range []string{"[1] pgschema dump --source SOURCE --section pre-data " + names + " | pgschema apply --target TARGET",
		"[2] pgtrig install --source SOURCE " + names, "[3] pgcopyout --source SOURCE " + names + " | pgcopyin --target TARGET",
		"[4] pgschema dump --source SOURCE --section indexes " + names, "re-run pgdelta", "pgtrig ignore --source SOURCE " + names} {
		if !strings.Contains(ee.Hint, w) {
			t.Errorf("hint %q does not say %q", ee.Hint, w)
		}
	}

	if err := Ignore(ctx, conn, "", catalog.Filter{Tables: []string{"public.scratch"}}); err != nil {
		t.Fatal(err)
	}
	requireDrifts(t, "after ignore", conn, "public.Mixed Case new_table", "public.ev partition_detached", "public.fresh new_table", "public.pending new_table")
	if _, err := Install(ctx, conn, InstallOptions{Filter: catalog.Filter{Tables: []string{"public.fresh", `public."Mixed Case"`}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(ctx, conn, InstallOptions{Force: true, Filter: catalog.Filter{Tables: []string{"public.ev"}}}); err != nil {
		t.Fatal(err)
	}
	// public.pending existed at the second install, which did not select it: still new to the first.
	requireDrifts(t, "after the second install and the repair of public.ev", conn, "public.pending new_table")

	// The first install's selection still holds: a later table in public is new, in side not.
	db.ExecAs(t, db.Owner, `CREATE TABLE public.later (id int PRIMARY KEY); CREATE TABLE side.later (id int PRIMARY KEY)`)
	requireDrifts(t, "after public.later", conn, "public.later new_table", "public.pending new_table")
	var progress bytes.Buffer
	res, err := Install(ctx, conn, InstallOptions{Filter: first, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(res.Tables, func(c Captured) bool { return c.Table.Name == "scratch" }) ||
		!strings.Contains(progress.String(), "public.scratch: not captured: left out of the migration by 'pgtrig ignore'") {
		t.Errorf("install captured the ignored public.scratch, or did not say it left it out:\n%s", progress.String())
	}
	requireDrifts(t, "after re-running the first install", conn)
	var rows int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pgferry.capture_selections").Scan(&rows); err != nil || rows != 4 {
		t.Errorf("capture_selections holds %d rows (%v), want 4: three installs' filters (the re-run adds to its own) and one ignore", rows, err)
	}
	// A partition created after install (the install re-runs gave it the TRUNCATE trigger), then
	// detached: a partition_detached of its root, not a new table.
	db.ExecAs(t, db.Owner, `ALTER TABLE public.ev DETACH PARTITION public.ev_2`)
	requireDrifts(t, "after detaching a partition created after install", conn, "public.ev partition_detached")
	// One no install listed, given the TRUNCATE trigger by pgdelta's CoverNewPartitions.
	db.ExecAs(t, db.Owner, `CREATE TABLE public.ev_4 PARTITION OF public.ev FOR VALUES IN (4)`)
	if _, err := CoverNewPartitions(ctx, conn, "", time.Second, io.Discard); err != nil {
		t.Fatal(err)
	}
	db.ExecAs(t, db.Owner, `ALTER TABLE public.ev DETACH PARTITION public.ev_4`)
	requireDrifts(t, "after detaching a partition no install listed", conn, "public.ev partition_detached")
}

// TestNewTablesInTransaction: the check runs inside the caller's snapshot (pgdelta's batch
// transaction, as a non-superuser) without disturbing it, and a capture schema made before the
// selections were recorded reports no new tables instead of failing the transaction.
func TestNewTablesInTransaction(t *testing.T) {
	db := newOwnerDB(t, `CREATE TABLE public.a (id int PRIMARY KEY)`)
	ctx := context.Background()
	conn := db.Conn(t, db.Owner)
	if _, err := Install(ctx, conn, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	requireDrifts(t, "before the new table", tx)
	db.ExecAs(t, db.Owner, `CREATE TABLE public.b (id int PRIMARY KEY)`)
	requireDrifts(t, "in the snapshot taken before it", tx)
	tx.Rollback(ctx)
	requireDrifts(t, "in a new snapshot", conn, "public.b new_table")
	db.ExecAs(t, db.Owner, `DROP TABLE pgferry.capture_selections`)
	tx, err = conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	requireDrifts(t, "with a registry from before the selections", tx)
	var one int
	if err := tx.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("the transaction broke: %v", err)
	}
}

// TestExactPattern: the hint's -t patterns, read back by the shell and the filter, select exactly the table.
func TestExactPattern(t *testing.T) {
	for _, tb := range []ident.Table{{Schema: "public", Name: "orders"}, {Schema: "App Data", Name: "Users"}, {Schema: "public", Name: `we"ird*`},
		{Schema: "s", Name: "it's"}} {
		p := exactPattern(tb)
		word := p
		if strings.HasPrefix(p, "'") { // undo the shell's single quotes
			word = strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(p, "'"), "'"), `'\''`, "'")
		}
		f, err := catalog.Filter{Tables: []string{word}}.Compile()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !f.MatchName(tb.Schema, tb.Name) || f.MatchName(tb.Schema, tb.Name+"x") || f.MatchName("other", tb.Name) {
			t.Errorf("pattern %s does not select exactly %s", p, tb.Key())
		}
	}
}
