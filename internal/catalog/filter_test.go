package catalog

import (
	"context"
	"errors"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgtest"
)

// names are the tables TestTablePatterns matches against.
var names = []ident.Table{
	{Schema: "public", Name: "orders"}, {Schema: "public", Name: "ORDERS"}, {Schema: "public", Name: "Orders"},
	{Schema: "app", Name: "orders"}, {Schema: "public", Name: "fooFOObar"}, {Schema: "public", Name: `FOO"BAR`},
	{Schema: "public", Name: "a.b"}, {Schema: "public", Name: "ord?rs"}, {Schema: "public", Name: "t$x"},
	{Schema: "public", Name: "t1"}, {Schema: "public", Name: "t22"}, {Schema: "App Data", Name: "Order Items"},
	{Schema: "app data", Name: "items"},
}

// TestTablePatterns: -t patterns read as pg_dump reads them (psql's "Patterns"): folding,
// double quotes, wildcards, the schema dot; without a dot, any schema.
func TestTablePatterns(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{"orders", "app.orders public.orders"},
		{"ORDERS", "app.orders public.orders"},
		{`"ORDERS"`, "public.ORDERS"},
		{`"Orders"`, "public.Orders"},
		{`public.ORDERS`, "public.orders"},
		{`PUBLIC."Orders"`, "public.Orders"},
		{`FOO"FOO"BAR`, "public.fooFOObar"},
		{`"FOO""BAR"`, `public.FOO"BAR`},
		{`"a.b"`, "public.a.b"},
		{`public."a.b"`, "public.a.b"},
		{`a.b`, ""},
		{`ord*`, "app.orders public.ord?rs public.orders"},
		{`*.orders`, "app.orders public.orders"},
		{`app.*`, "app.orders"},
		{`ord?rs`, "app.orders public.ord?rs public.orders"},
		{`"ord?rs"`, "public.ord?rs"},
		{`"ord*"`, ""},
		{`t$x`, "public.t$x"},
		{`t[0-9]`, "public.t1"},
		{`t[0-9]*`, "public.t1 public.t22"},
		{`"t[0-9]"`, ""},
		{`"App Data".*`, "App Data.Order Items"},
		{`App Data.*`, "app data.items"},
		{`"App Data"."Order Items"`, "App Data.Order Items"},
		{`*`, strings.Join(allKeys(), " ")},
	} {
		f, err := Filter{Tables: []string{tc.pattern}}.Compile()
		if err != nil {
			t.Errorf("%s: %v", tc.pattern, err)
			continue
		}
		var got []string
		for _, n := range names {
			if f.MatchName(n.Schema, n.Name) {
				got = append(got, n.Key())
			}
		}
		sort.Strings(got)
		if strings.Join(got, " ") != tc.want {
			t.Errorf("-t %s matches [%s], want [%s]", tc.pattern, strings.Join(got, " "), tc.want)
		}
	}
}

func allKeys() []string {
	var k []string
	for _, n := range names {
		k = append(k, n.Key())
	}
	sort.Strings(k)
	return k
}

// TestBadPatterns: too many dots, a dotted schema pattern and a bad character class are usage
// errors naming the option and the pattern.
func TestBadPatterns(t *testing.T) {
	for _, tc := range []struct {
		f    Filter
		want string
	}{
		{Filter{Tables: []string{"db.public.t"}}, "bad pattern -t db.public.t: too many dotted names"},
		{Filter{ExcludeTables: []string{"t["}}, "bad pattern -T 't[': error parsing regexp"},
		{Filter{Schemas: []string{"a.b"}}, "bad pattern -n a.b: a schema pattern has no dot"},
		{Filter{ExcludeTableData: []string{"a.b.c"}}, "bad pattern --exclude-table-data a.b.c"},
	} {
		_, err := tc.f.Compile()
		var pe *PatternError
		if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want a PatternError %q", tc.f, err, tc.want)
		}
	}
	if _, err := (Filter{Schemas: []string{`"a.b"`}, Tables: []string{`"x.y".z`}}).Compile(); err != nil {
		t.Errorf("quoted dots: %v", err)
	}
}

// TestFilterCombines: -n/-N decide by schema and -t/-T by table, and a table needs both.
func TestFilterCombines(t *testing.T) {
	f, err := Filter{Schemas: []string{"app*"}, ExcludeSchemas: []string{"appx"}, Tables: []string{"o*", "public.items"}, ExcludeTables: []string{"*.old"}}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{
		"app.orders": true, "apps.old": false, "appx.orders": false, "app.items": false,
		"public.items": false, "public.orders": false, "APP.orders": false,
	} {
		tb, _ := ident.ParseKey(key)
		if got := f.MatchName(tb.Schema, tb.Name); got != want {
			t.Errorf("%s: selected %v, want %v", key, got, want)
		}
	}
	if !f.MatchSchema("app") || f.MatchSchema("appx") || f.MatchSchema("public") {
		t.Errorf("MatchSchema does not apply -n/-N alone")
	}
}

// partitioned is public.ev (partitioned) with partitions public.ev_2024 (itself partitioned) and
// public.ev_2024_a, arch.ev_old in another schema, and a plain public.other.
func partitioned() []*Table {
	mk := func(schema, name string, root *ident.Table) *Table {
		t := &Table{Root: root, Partition: root != nil}
		t.Schema, t.Name = schema, name
		return t
	}
	ev := mk("public", "ev", nil)
	return []*Table{ev, mk("public", "ev_2024", &ev.Table), mk("public", "ev_2024_a", &ev.Table),
		mk("arch", "ev_old", &ev.Table), mk("public", "other", nil)}
}

func selected(f Filter, all []*Table) string {
	var s []string
	for _, t := range all {
		if f.Match(t) {
			s = append(s, t.Key())
		}
	}
	return strings.Join(s, " ")
}

// TestResolvePartitions: a partition named by -t selects its whole partitioned table; an
// exclusion that names a partition but not its table is refused; the root's patterns decide for
// every partition.
func TestResolvePartitions(t *testing.T) {
	all := partitioned()
	evAll := "public.ev public.ev_2024 public.ev_2024_a arch.ev_old"
	for _, tc := range []struct {
		f    Filter
		want string // selected tables, or the error
	}{
		{Filter{Tables: []string{"ev_2024_a"}}, evAll},
		{Filter{Tables: []string{"arch.*"}}, evAll},
		{Filter{Tables: []string{"ev"}}, evAll},
		{Filter{Tables: []string{"ev_2024"}, ExcludeTables: []string{"ev"}}, ""},
		{Filter{ExcludeTables: []string{"ev"}}, "public.other"},
		{Filter{ExcludeTables: []string{"ev_*"}}, "the exclusions name partition public.ev_2024 but not its partitioned table public.ev, which is moved whole"},
		{Filter{ExcludeSchemas: []string{"arch"}}, "the exclusions name partition arch.ev_old but not its partitioned table public.ev"},
		{Filter{Tables: []string{"other"}, ExcludeTables: []string{"ev_2024"}}, "public.other"},
		{Filter{ExcludeTableData: []string{"ev_2024_a"}}, "the exclusions name partition public.ev_2024_a"},
		{Filter{ExcludeTableData: []string{"ev", "ev_2024_a"}}, "public.other"},
		{Filter{Schemas: []string{"arch"}}, evAll},
	} {
		f, err := tc.f.Resolve(all)
		got := ""
		if err != nil {
			got = err.Error()
			var ee *cliutil.ExitError
			if !errors.As(err, &ee) || ee.Code != cliutil.ExitFailure {
				t.Errorf("%+v: %v does not exit 1", tc.f, err)
			}
		} else {
			got = selected(f, all)
		}
		if !strings.HasPrefix(got, tc.want) || tc.want == "" && got != "" {
			t.Errorf("%+v: %q, want %q", tc.f, got, tc.want)
		}
	}
}

// TestResolveNoMatch: -n/-t patterns that match no table at all fail with exit 1 (as pg_dump
// fails); one of several matching is enough, and exclusions never fail.
func TestResolveNoMatch(t *testing.T) {
	all := partitioned()
	for _, tc := range []struct {
		f    Filter
		want string
	}{
		{Filter{Tables: []string{"nothing"}}, "no table matches -t nothing"},
		{Filter{Tables: []string{"EV"}}, ""},
		{Filter{Tables: []string{`"EV"`, "x y"}}, `no table matches -t '"EV"' -t 'x y'`},
		{Filter{Schemas: []string{"app"}, Tables: []string{"ev"}}, "no table matches -n app -t ev"},
		{Filter{Schemas: []string{"nope"}}, "no table matches -n nope"},
		{Filter{Tables: []string{"nothing", "other"}}, ""},
		{Filter{ExcludeTables: []string{"nothing"}, ExcludeSchemas: []string{"nope"}, ExcludeTableData: []string{"nada"}}, ""},
		{Filter{Tables: []string{"other"}, ExcludeTables: []string{"other"}}, ""},
	} {
		_, err := tc.f.Resolve(all)
		var nm *NoMatchError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.f, err)
		case tc.want != "" && (!errors.As(err, &nm) || err.Error() != tc.want):
			t.Errorf("%+v: %v, want %q", tc.f, err, tc.want)
		}
	}
	var out strings.Builder
	_, err := Filter{Tables: []string{"Orders"}}.Resolve(all)
	if cliutil.Report(&out, "pgx", err) != 1 || !strings.Contains(out.String(), `hint: letters outside double quotes are folded to lower case`) {
		t.Errorf("no hint about folding:\n%s", out.String())
	}
}

// TestExcluded lists what the filters leave out: tables (not partitions) and tables without rows.
func TestExcluded(t *testing.T) {
	f, err := Filter{ExcludeTables: []string{"other"}, ExcludeTableData: []string{"ev"}}.Resolve(partitioned())
	if err != nil {
		t.Fatal(err)
	}
	got := f.Excluded(partitioned())
	if len(got) != 2 || got[0] != (Excluded{Table: "public.ev", RowsOnly: true}) || got[1] != (Excluded{Table: "public.other"}) {
		t.Errorf("Excluded = %+v", got)
	}
}

var dumpTableRE = regexp.MustCompile(`(?m)^-- Name: (.*); Type: TABLE; Schema: (.*); Owner:`)

// TestPatternsLikePgDump: for each pattern, the tables pgferry selects are the tables
// pg_dump -t dumps, and where pgferry finds no match pg_dump fails too. Every pattern without a
// schema matches only in public, which pg_dump's search path sees (pgferry looks in every schema:
// docs/filters.md).
func TestPatternsLikePgDump(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, `CREATE SCHEMA "App Data"; CREATE SCHEMA sales;
CREATE TABLE public.orders (id int); CREATE TABLE public."ORDERS" (id int); CREATE TABLE public."Orders" (id int);
CREATE TABLE sales.orders_2024 (id int); CREATE TABLE public."fooFOObar" (id int); CREATE TABLE public."FOO""BAR" (id int);
CREATE TABLE public."a.b" (id int); CREATE TABLE public."ord?rs" (id int); CREATE TABLE public."t$x" (id int);
CREATE TABLE public.t1 (id int); CREATE TABLE public.t22 (id int); CREATE TABLE "App Data"."Order Items" (id int);
CREATE TABLE public.ev (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE public.ev_2024 PARTITION OF public.ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');`)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	all, err := ListTables(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"orders", "ORDERS", `"ORDERS"`, `"Orders"`, `PUBLIC."Orders"`, `FOO"FOO"BAR`, `"FOO""BAR"`,
		`"a.b"`, `public."a.b"`, `t*`, `*.ord*`, `"ord?rs"`, `ord?rs`, `t$x`, `t[0-9]`, `t[0-9]*`, `"App Data".*`, `App Data.*`,
		`sales.*`, `nothing`, `"ord*"`, `public.ev`} {
		out, dumpErr := db.Cluster.Run("pg_dump", "--schema-only", "-t", p, "-d", db.URL)
		var dumped []string
		for _, m := range dumpTableRE.FindAllStringSubmatch(string(out), -1) {
			dumped = append(dumped, m[2]+"."+m[1])
		}
		sort.Strings(dumped)
		f, err := Filter{Tables: []string{p}}.Resolve(all)
		var ours []string
		for _, tb := range all {
			if err == nil && f.MatchName(tb.Schema, tb.Name) && !tb.Partition {
				ours = append(ours, tb.Key())
			}
		}
		sort.Strings(ours)
		if (err != nil) != (dumpErr != nil) || strings.Join(ours, ",") != strings.Join(dumped, ",") {
			t.Errorf("-t %s: pgferry %v (err %v), pg_dump %v (err %v)", p, ours, err, dumped, dumpErr)
		}
	}
}
