package capture

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/ident"
)

// TestCheck: keys, tables without a key (how they are captured, and one that cannot be), missing privileges, unlogged tables, a long
// transaction holding a table lock, and write rates, as an ordinary role.
func TestCheck(t *testing.T) {
	db := newOwnerDB(t, `
CREATE TABLE public.orders (id int PRIMARY KEY);
CREATE TABLE public.nokey (a int);
CREATE TABLE public.kl_idx (id int NOT NULL, v text);
CREATE INDEX kl_idx_id ON public.kl_idx (id);
CREATE TABLE public.nocols ();
CREATE UNLOGGED TABLE public.scratch (id int PRIMARY KEY);
CREATE TABLE public.ev (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.ev_a PARTITION OF public.ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');`)
	db.Exec(t, "INSERT INTO public.orders SELECT generate_series(1, 100)") // its session ends, so the statistics are flushed
	db.Exec(t, `CREATE TABLE public.foreign_owned (id int PRIMARY KEY); GRANT SELECT ON public.foreign_owned TO `+ident.Quote(db.Owner))
	ctx := context.Background()
	conn := db.Conn(t, db.Owner)
	holder := db.Conn(t, db.Owner)
	if _, err := holder.Exec(ctx, "BEGIN; INSERT INTO public.orders VALUES (1000)"); err != nil {
		t.Fatal(err)
	}
	defer holder.Exec(ctx, "ROLLBACK")
	for i := 0; ; i++ {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relid = 'public.orders'::regclass").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n >= 100 && i >= 11 {
			break
		}
		if i > 100 {
			t.Fatal("statistics never showed the inserts")
		}
		time.Sleep(100 * time.Millisecond)
	}

	rep, err := Check(ctx, conn, CheckOptions{LongTx: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]CheckTable{}
	for _, tb := range rep.Tables {
		tables[tb.Table] = tb
	}
	if o := tables["public.orders"]; strings.Join(o.Key, ",") != "id" || o.KeySource != "primary key" || o.Writes < 100 || o.WritesPerSec <= 0 {
		t.Errorf("orders = %+v", o)
	}
	if e := tables["public.ev"]; e.Kind != "partitioned" || e.Partitions != 1 || strings.Join(e.Key, ",") != "id,at" {
		t.Errorf("ev = %+v", e)
	}
	if _, ok := tables["public.ev_a"]; ok {
		t.Error("a partition is listed as a table of its own")
	}
	has := func(kind, table, text string) bool {
		for _, p := range rep.Problems {
			if p.Kind == kind && p.Table == table && strings.Contains(p.Message+" "+p.Remedy, text) {
				return true
			}
		}
		return false
	}
	for _, want := range []struct{ kind, table, text string }{
		{"keyless", "public.nokey", "captured as whole rows"},
		{"keyless", "public.nokey", "reads the whole table"},
		{"keyless", "public.kl_idx", "found by index kl_idx_id on id"},
		{"uncapturable", "public.nocols", `ALTER TABLE "public"."nocols" ADD PRIMARY KEY`},
		{"uncapturable", "public.nocols", "--exclude-table-data public.nocols"},
		{"privilege", "public.foreign_owned", "GRANT TRIGGER ON"},
		{"unlogged", "public.scratch", "unlogged"},
		{"lock_holder", "public.orders", "pg_terminate_backend"},
		{"long_transaction", "", "transaction open"},
	} {
		if !has(want.kind, want.table, want.text) {
			t.Errorf("no %s problem on %q mentioning %q in %+v", want.kind, want.table, want.text, rep.Problems)
		}
	}
	// Before 13 the owner cannot make the capture trigger's clones on ev's partitions ENABLE ALWAYS.
	if got, want := has("privilege", "public.ev", "stays ENABLE ORIGIN"), db.Cluster.Version < 130000; got != want {
		t.Errorf("server %d: warning about ev's partitions staying ENABLE ORIGIN = %v, want %v: %+v", db.Cluster.Version, got, want, rep.Problems)
	}
	if rep.Blocking != 3 {
		t.Errorf("blocking = %d, want 3 (no columns, privilege, lock holder): %+v", rep.Blocking, rep.Problems)
	}
	if k := tables["public.kl_idx"].Keyless; k == nil || k.Index != "kl_idx_id" || tables["public.nokey"].Keyless == nil || tables["public.nokey"].Keyless.Index != "" {
		t.Errorf("keyless lookups: kl_idx %+v, nokey %+v", tables["public.kl_idx"].Keyless, tables["public.nokey"].Keyless)
	}

	// Excluding the blockers and ending the transaction leaves nothing blocking.
	holder.Exec(ctx, "ROLLBACK")
	rep2, err := Check(ctx, conn, CheckOptions{Filter: filterExcluding("nocols", "foreign_owned")})
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Blocking != 0 {
		t.Errorf("blocking after exclusions = %d: %+v", rep2.Blocking, rep2.Problems)
	}
}

func filterExcluding(names ...string) (f catalog.Filter) {
	f.ExcludeTables = names
	return f
}
