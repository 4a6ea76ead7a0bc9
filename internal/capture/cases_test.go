package capture

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/ident"
)

func relidOf(t *testing.T, conn *pgx.Conn, table string) uint32 {
	t.Helper()
	var oid uint32
	if err := conn.QueryRow(context.Background(), "SELECT $1::regclass::oid", table).Scan(&oid); err != nil {
		t.Fatal(err)
	}
	return oid
}

// TestCaptureStatementShapes runs statements whose row effects are tricky for triggers
// (FK cascades, writable CTEs, MERGE (15+), multi-row inserts, key shifts, writes through an inheritance parent,
// TRUNCATE of a partitioned root) one transaction each, and checks the exact delta rows.
func TestCaptureStatementShapes(t *testing.T) {
	db := newOwnerDB(t, `
CREATE TABLE public.items (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
CREATE TABLE public.notes (id int PRIMARY KEY, item_id int REFERENCES public.items ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE public.parent (id int PRIMARY KEY, v int);
CREATE TABLE public.child (id int PRIMARY KEY, v int, extra text) ;
ALTER TABLE public.child INHERIT public.parent;
CREATE TABLE public.ev (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.ev_a PARTITION OF public.ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE public.ev_b PARTITION OF public.ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.uq (code varchar(10) COLLATE "C" NOT NULL, n int NOT NULL, v int, UNIQUE (n, code));
INSERT INTO public.items SELECT g FROM generate_series(1, 5) g;
INSERT INTO public.notes VALUES (10, 1), (11, 1), (12, 2);
INSERT INTO public.parent VALUES (1, 0); INSERT INTO public.child VALUES (2, 0, 'x');
INSERT INTO public.ev VALUES (1, '2024-05-01'), (2, '2025-05-01');
INSERT INTO public.uq VALUES ('a', 1, 0), ('b', 2, 0);
CREATE TABLE public.shifted (id int PRIMARY KEY, v int);
CREATE FUNCTION public.shift() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN IF NEW.v = 42 THEN NEW.id := NEW.id + 100; END IF; RETURN NEW; END$$;
CREATE TRIGGER shift BEFORE UPDATE ON public.shifted FOR EACH ROW EXECUTE FUNCTION public.shift();
INSERT INTO public.shifted VALUES (1, 0), (2, 0);`)
	ctx := context.Background()
	conn := db.Conn(t, db.Owner)
	if _, err := Install(ctx, conn, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	var want, wantTrunc []string
	step := func(sql string, rows ...string) {
		t.Helper()
		var x int64
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT txid_current()").Scan(&x); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if strings.HasPrefix(r, "TRUNCATE ") {
				wantTrunc = append(wantTrunc, fmt.Sprintf("%s %d", strings.TrimPrefix(r, "TRUNCATE "), x))
				continue
			}
			want = append(want, fmt.Sprintf("%s %d", r, x))
		}
	}
	step("DELETE FROM public.items WHERE id = 1", "public.items 1", "public.notes 10", "public.notes 11")
	step("UPDATE public.items SET id = 20 WHERE id = 2", "public.items 20", "public.items 2", "public.notes 12")
	step("UPDATE public.items SET id = id + 1000 WHERE id IN (3, 4)", "public.items 1003", "public.items 1004", "public.items 3", "public.items 4")
	step("WITH d AS (DELETE FROM public.items WHERE id = 5 RETURNING id) INSERT INTO public.items SELECT id + 100 FROM d",
		"public.items 5", "public.items 105")
	if db.Cluster.Version >= 150000 {
		step("MERGE INTO public.items i USING (VALUES (1003), (6)) s(id) ON i.id = s.id WHEN MATCHED THEN UPDATE SET v = 9 WHEN NOT MATCHED THEN INSERT VALUES (s.id)",
			"public.items 1003", "public.items 6")
	} else {
		// No MERGE before 15: the same rows changed by the statements an application would use.
		step("UPDATE public.items SET v = 9 WHERE id = 1003; INSERT INTO public.items VALUES (6)", "public.items 1003", "public.items 6")
	}
	step("INSERT INTO public.items (id) VALUES (7), (8)", "public.items 7", "public.items 8")
	step("WITH a AS (UPDATE public.items SET v = 1 WHERE id = 7 RETURNING 1) UPDATE public.items SET v = 2 WHERE id = 8", "public.items 7", "public.items 8")
	step("INSERT INTO public.items (id) VALUES (8), (9) ON CONFLICT (id) DO UPDATE SET v = 3", "public.items 8", "public.items 9")
	step("UPDATE public.parent SET v = v + 1", "public.parent 1", "public.child 2")
	step("DELETE FROM public.parent WHERE id = 2", "public.child 2")
	step("UPDATE public.ev SET at = '2025-06-01' WHERE id = 1", "public.ev 1|2024-05-01", "public.ev 1|2025-06-01")
	step("UPDATE public.uq SET code = 'z' WHERE n = 1", "public.uq 1|z", "public.uq 1|a")
	step("UPDATE public.uq SET v = 5", "public.uq 1|z", "public.uq 2|b")
	// A BEFORE trigger of the application's changes the key of an UPDATE that does not name it.
	step("UPDATE public.shifted SET v = 42 WHERE id = 1", "public.shifted 101", "public.shifted 1")
	step("UPDATE public.shifted SET v = 7 WHERE id = 2", "public.shifted 2")
	step("TRUNCATE public.ev", "TRUNCATE public.ev public.ev", "TRUNCATE public.ev_a public.ev", "TRUNCATE public.ev_b public.ev")
	step("TRUNCATE public.items CASCADE", "TRUNCATE public.items public.items", "TRUNCATE public.notes public.notes")
	// The delta table keeps the key's collation, so it compares keys as the table does.
	var coll string
	if err := conn.QueryRow(ctx, `SELECT coalesce(co.collname::text, '') FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation
  WHERE a.attrelid = $1::regclass AND a.attname = 'code'`, "pgferry."+ident.Quote(DeltaName(relidOf(t, conn, "public.uq")))).Scan(&coll); err != nil || coll != "C" {
		t.Fatalf("collation of the delta table's key column = %q, %v; want C", coll, err)
	}
	sort.Strings(want)
	sort.Strings(wantTrunc)
	diffLines(t, "delta rows", deltaRows(t, conn, DefaultSchema), want)
	diffLines(t, "truncates", truncateRows(t, conn, DefaultSchema), wantTrunc)
}

// TestReinstallAfterKeyChange: when a table's key changes, a re-run never drops changes waiting
// in its delta table: it keeps capturing by the old key (with a warning saying how to switch);
// --force re-captures by the new key and says the table must be copied again; once the delta
// table is empty (caught up and pruned) a plain re-run switches to the new key by itself.
func TestReinstallAfterKeyChange(t *testing.T) {
	db := newOwnerDB(t, `CREATE TABLE public.t (id int PRIMARY KEY, code text NOT NULL);
CREATE TABLE public.u (id int NOT NULL, code text NOT NULL); CREATE UNIQUE INDEX u_code ON public.u (code)`)
	ctx := context.Background()
	conn := db.Conn(t, db.Owner)
	if _, err := Install(ctx, conn, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	// public.t: its primary key moves; public.u: keyed by a unique index, gets a primary key.
	db.ExecAs(t, db.Owner, `INSERT INTO public.t VALUES (1, 'a'); INSERT INTO public.u VALUES (1, 'x');
ALTER TABLE public.t DROP CONSTRAINT t_pkey; ALTER TABLE public.t ADD PRIMARY KEY (code); ALTER TABLE public.u ADD PRIMARY KEY (id)`)
	var log strings.Builder
	res, err := Install(ctx, conn, InstallOptions{Progress: &log})
	if err != nil {
		t.Fatal(err)
	}
	keys := func(res *InstallResult) string {
		var m []string
		for _, c := range res.Tables {
			m = append(m, c.Table.Key()+"("+strings.Join(c.KeyColumns, ",")+")")
		}
		return strings.Join(m, " ")
	}
	if len(res.Installed) != 0 || keys(res) != "public.t(id) public.u(code)" {
		t.Fatalf("re-install with changes waiting changed the capture: installed %v, keys %s\n%s", res.Installed, keys(res), log.String())
	}
	if !strings.Contains(log.String(), "public.u: key is now id (primary key) but stays code for capture: 1 change(s)") {
		t.Fatalf("no warning about the kept key:\n%s", log.String())
	}
	db.ExecAs(t, db.Owner, `INSERT INTO public.t VALUES (2, 'b'); INSERT INTO public.u VALUES (2, 'y')`)
	diffLines(t, "delta rows under the old keys", trimTxid(deltaRows(t, conn, DefaultSchema)), []string{"public.t 1", "public.t 2", "public.u x", "public.u y"})

	log.Reset()
	if res, err = Install(ctx, conn, InstallOptions{Progress: &log, Force: true, Filter: catalog.Filter{Tables: []string{"public.t"}}}); err != nil {
		t.Fatal(err)
	}
	if keys(res) != "public.t(code) public.u(code)" || !strings.Contains(log.String(), "2 change(s) not yet applied dropped: copy it again") {
		t.Fatalf("--force: keys %s\n%s", keys(res), log.String())
	}
	db.ExecAs(t, db.Owner, `TRUNCATE pgferry.`+DeltaName(relidOf(t, conn, "public.u")))
	if res, err = Install(ctx, conn, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if keys(res) != "public.t(code) public.u(id)" {
		t.Fatalf("re-install with an empty delta table kept the old key: %s", keys(res))
	}
	db.ExecAs(t, db.Owner, `INSERT INTO public.t VALUES (3, 'c'); INSERT INTO public.u VALUES (3, 'z')`)
	diffLines(t, "delta rows under the new keys", trimTxid(deltaRows(t, conn, DefaultSchema)), []string{"public.t c", "public.u 3"})
}

// trimTxid drops the txid from deltaRows lines.
func trimTxid(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l[:strings.LastIndex(l, " ")]
	}
	sort.Strings(out)
	return out
}

// TestBulkAfterSmallStatements: the UPDATE trigger's plan is cached from the session's first,
// one-row statements; a bulk UPDATE afterwards must still run in near-linear time (a cached
// nested-loop anti-join took 30 s for 20,000 rows before enable_nestloop was pinned off).
func TestBulkAfterSmallStatements(t *testing.T) {
	db := newOwnerDB(t, `CREATE TABLE public.t (id int PRIMARY KEY, v int); INSERT INTO public.t SELECT g, 0 FROM generate_series(1, 20000) g`)
	ctx := context.Background()
	conn := db.Conn(t, db.Owner)
	if _, err := Install(ctx, conn, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 8; i++ {
		if _, err := conn.Exec(ctx, "UPDATE public.t SET v = 1 WHERE id = $1", i); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if _, err := conn.Exec(ctx, "UPDATE public.t SET v = 2"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("bulk UPDATE of 20,000 rows after small ones took %s", d)
	}
	if n := len(deltaRows(t, conn, DefaultSchema)); n != 8+20000 {
		t.Fatalf("%d delta rows, want %d", n, 8+20000)
	}
}
