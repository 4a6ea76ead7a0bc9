package catalog

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestListTables(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, `
CREATE SCHEMA "App Data";
CREATE TABLE "App Data"."Order Items"(id bigint PRIMARY KEY, "Qty" int, total numeric GENERATED ALWAYS AS ("Qty" * 2) STORED);
CREATE TABLE public.uq(a text NOT NULL, b int NOT NULL, c text, UNIQUE (b, a));
CREATE TABLE public.nokey(a int, b text UNIQUE);
CREATE TABLE public.parent(id int PRIMARY KEY);
CREATE TABLE public.child(extra text) INHERITS (public.parent);
CREATE TABLE public.ev(id int, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.ev_2024 PARTITION OF public.ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY RANGE (id);
CREATE TABLE public.ev_2024_a PARTITION OF public.ev_2024 FOR VALUES FROM (0) TO (1000);
ALTER TABLE public.uq DROP COLUMN c;
`)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tables, err := ListTables(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Table{}
	for _, tb := range tables {
		byName[tb.Key()] = tb
	}
	oi := byName["App Data.Order Items"]
	if oi == nil || strings.Join(oi.ColumnNames(), ",") != "id,Qty" || strings.Join(oi.KeyColumns, ",") != "id" || oi.KeySource != "primary key" {
		t.Fatalf("Order Items = %+v", oi)
	}
	if uq := byName["public.uq"]; strings.Join(uq.KeyColumns, ",") != "b,a" || !strings.HasPrefix(uq.KeySource, "unique index") || len(uq.Columns) != 2 {
		t.Fatalf("uq = %+v", uq)
	}
	if nk := byName["public.nokey"]; nk.KeyColumns != nil {
		t.Fatalf("nokey has key %v (unique over a nullable column must not count)", nk.KeyColumns)
	}
	if p := byName["public.parent"]; !p.Inherited {
		t.Fatal("parent not marked inherited")
	}
	leaf := byName["public.ev_2024_a"]
	if leaf == nil || !leaf.Partition || leaf.Root == nil || leaf.Root.Key() != "public.ev" || !leaf.Leaf() {
		t.Fatalf("ev_2024_a = %+v", leaf)
	}
	if ev := byName["public.ev"]; ev.Kind != "p" || ev.Partition || ev.Root != nil {
		t.Fatalf("ev = %+v", ev)
	}
	if !(Filter{Tables: []string{"ev"}}).Match(leaf) {
		t.Fatal("filter on the parent should select its partitions")
	}
	if (Filter{ExcludeSchemas: []string{`"App"*`}}).Match(oi) {
		t.Fatal("exclude-schema glob did not exclude")
	}
	if !(Filter{Tables: []string{`"App Data"."Order"*`}}).Match(oi) {
		t.Fatal("table glob did not select")
	}
}

// TestListTablesIncludeKey: a unique index with INCLUDE columns keys the table by its key
// columns only, so a nullable INCLUDE column neither disqualifies it nor joins the key.
func TestListTablesIncludeKey(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, `
CREATE TABLE public.inc (a int NOT NULL, b int, c text);
CREATE UNIQUE INDEX inc_a ON public.inc (a) INCLUDE (b);
CREATE TABLE public.inc_null (a int, b int NOT NULL);
CREATE UNIQUE INDEX inc_null_a ON public.inc_null (a) INCLUDE (b);`)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tables, err := ListTables(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Table{}
	for _, tb := range tables {
		byName[tb.Key()] = tb
	}
	if inc := byName["public.inc"]; strings.Join(inc.KeyColumns, ",") != "a" || inc.KeySource != "unique index inc_a" {
		t.Errorf("inc: key %v from %q, want [a] from unique index inc_a", inc.KeyColumns, inc.KeySource)
	}
	if n := byName["public.inc_null"]; n.KeyColumns != nil {
		t.Errorf("inc_null: key %v; its key column is nullable, so it has none", n.KeyColumns)
	}
}

// TestFilterExcludeTableData: --exclude-table-data keeps the definition (MatchName) and drops
// the rows (Match), for partitions through their root.
func TestFilterExcludeTableData(t *testing.T) {
	f := Filter{ExcludeTableData: []string{"public.audit_*", "cache"}}
	audit := &Table{}
	audit.Schema, audit.Name = "public", "audit_log"
	part := &Table{Root: &audit.Table}
	part.Schema, part.Name = "public", "p_2024"
	other := &Table{}
	other.Schema, other.Name = "app", "cache"
	kept := &Table{}
	kept.Schema, kept.Name = "public", "orders"
	for _, tb := range []*Table{audit, part, other} {
		if f.Match(tb) || !f.MatchName(tb.Schema, tb.Name) {
			t.Errorf("%s: Match %v MatchName %v, want false and true", tb.Key(), f.Match(tb), f.MatchName(tb.Schema, tb.Name))
		}
	}
	if !f.Match(kept) {
		t.Errorf("orders is not selected")
	}
}
