package catalog

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestTextOnlyTables: reg* columns (their binary form is a raw OID), arrays of them and domains
// over them make a table text-only, like composite columns; built-in scalars and enums do not.
func TestTextOnlyTables(t *testing.T) {
	db := pgtest.Source(t)
	regcollation := "int" // regcollation exists from PostgreSQL 13
	if db.Cluster.Version >= 130000 {
		regcollation = "regcollation"
	}
	db.Exec(t, `
CREATE TYPE public.mood AS ENUM ('ok');
CREATE TYPE public.pair AS (a int, b int);
CREATE DOMAIN public.fn AS regproc;
CREATE TABLE public.plain (id int PRIMARY KEY, m public.mood, t text[], at timestamptz);
CREATE TABLE public.composite (id int PRIMARY KEY, p public.pair);
CREATE TABLE public.rel (id int PRIMARY KEY, r regclass);
CREATE TABLE public.types (id int PRIMARY KEY, ts regtype[]);
CREATE TABLE public.dom (id int PRIMARY KEY, f public.fn);
CREATE TABLE public.others (id int PRIMARY KEY, a regprocedure, b regoper, c regoperator, d regconfig,
  e regdictionary, f regnamespace, g regrole, h `+regcollation+`);`)
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
	got, err := TextOnlyTables(ctx, conn, tables)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for k := range got {
		names = append(names, k)
	}
	sort.Strings(names)
	if want := "public.composite,public.dom,public.others,public.rel,public.types"; strings.Join(names, ",") != want {
		t.Errorf("text-only tables %v, want %s", names, want)
	}
}
