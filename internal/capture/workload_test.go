package capture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

const workloadSchema = `
CREATE SCHEMA "App Data";
CREATE TABLE public.items (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
CREATE TABLE "App Data"."Line Items" (order_id text, "Line No" int, qty int, PRIMARY KEY (order_id, "Line No"));
CREATE TABLE public.ev (id int, at date, v int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.ev_2024 PARTITION OF public.ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE public.ev_2025 PARTITION OF public.ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO public.items SELECT g, 0 FROM generate_series(1, 100) g;
INSERT INTO "App Data"."Line Items" SELECT 'o' || (g % 10), g, 1 FROM generate_series(1, 50) g;
INSERT INTO public.ev SELECT g, date '2024-06-01', 0 FROM generate_series(1, 50) g;
`

// expect collects the delta rows and truncates the workload's committed transactions must leave.
type expect struct {
	mu        sync.Mutex
	rows      []string
	truncates []string
}

func (e *expect) add(rows, truncs []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rows = append(e.rows, rows...)
	e.truncates = append(e.truncates, truncs...)
}

// TestCaptureConcurrentWorkload shows that capture is complete and exact: a concurrent workload
// of inserts, upserts, updates, key updates, deletes, truncates, rolled-back savepoints, aborted
// transactions and writes straight into partitions (one created after install) leaves exactly
// the keys and txids of its committed work, all as ordinary roles.
func TestCaptureConcurrentWorkload(t *testing.T) {
	db := newOwnerDB(t, workloadSchema)
	ctx := context.Background()
	owner := db.Conn(t, db.Owner)
	res, err := Install(ctx, owner, InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tables) != 3 || len(res.Installed) != 3 || res.Position == "" {
		t.Fatalf("install result = %+v", res)
	}
	// A partition created after install is captured through the cloned row trigger;
	// a re-run adds its TRUNCATE trigger and installs nothing else.
	db.ExecAs(t, db.Owner, `CREATE TABLE public.ev_2026 PARTITION OF public.ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`)
	res2, err := Install(ctx, owner, InstallOptions{})
	if err != nil || len(res2.Installed) != 0 {
		t.Fatalf("re-run installed %v, err %v", res2, err)
	}
	db.ExecAs(t, db.Owner, fmt.Sprintf(`GRANT USAGE ON SCHEMA "App Data" TO %[1]s;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public, "App Data" TO %[1]s;`, ident.Quote(db.Writer)))

	var exp expect
	var nextKey atomic.Int64
	nextKey.Store(100000)
	var committed, aborted atomic.Int64
	var wg sync.WaitGroup
	const workers, txPerWorker = 4, 60
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, db.URLAs(db.Writer))
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close(ctx)
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < txPerWorker; i++ {
				rows, truncs, err := oneTx(ctx, conn, rng, &nextKey)
				if err != nil {
					conn.Exec(ctx, "ROLLBACK")
					aborted.Add(1)
					continue
				}
				if rng.IntN(5) == 0 {
					if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
						errs <- err
						return
					}
					aborted.Add(1)
					continue
				}
				if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
					conn.Exec(ctx, "ROLLBACK")
					aborted.Add(1)
					continue
				}
				committed.Add(1)
				exp.add(rows, truncs)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if committed.Load() < 50 || aborted.Load() < 10 {
		t.Fatalf("workload too thin: %d committed, %d aborted", committed.Load(), aborted.Load())
	}
	if len(exp.truncates) == 0 {
		t.Fatal("workload committed no truncate")
	}
	sort.Strings(exp.rows)
	sort.Strings(exp.truncates)
	diffLines(t, "delta rows", deltaRows(t, owner, DefaultSchema), exp.rows)
	diffLines(t, "truncates", truncateRows(t, owner, DefaultSchema), exp.truncates)
	t.Logf("%d committed, %d aborted transactions, %d delta rows, %d truncates", committed.Load(), aborted.Load(), len(exp.rows), len(exp.truncates))
}

// oneTx runs one random transaction, leaving it open, and returns the delta rows and truncates
// its statements recorded outside rolled-back savepoints.
func oneTx(ctx context.Context, conn *pgx.Conn, rng *rand.Rand, next *atomic.Int64) (rows, truncs []string, err error) {
	if _, err = conn.Exec(ctx, "BEGIN"); err != nil {
		return nil, nil, err
	}
	var txid int64
	if err = conn.QueryRow(ctx, "SELECT txid_current()").Scan(&txid); err != nil {
		return nil, nil, err
	}
	if rng.IntN(25) == 0 {
		tb := []string{"public.items", "public.ev_2024", `"App Data"."Line Items"`}[rng.IntN(3)]
		if _, err = conn.Exec(ctx, "TRUNCATE "+tb); err != nil {
			return nil, nil, err
		}
		switch tb {
		case "public.items":
			truncs = append(truncs, fmt.Sprintf("public.items public.items %d", txid))
		case "public.ev_2024":
			truncs = append(truncs, fmt.Sprintf("public.ev_2024 public.ev %d", txid))
		default:
			truncs = append(truncs, fmt.Sprintf("App Data.Line Items App Data.Line Items %d", txid))
		}
		return nil, truncs, nil
	}
	q := func(table, sql string, args ...any) ([]string, error) {
		r, err := conn.Query(ctx, sql, args...)
		if err != nil {
			return nil, err
		}
		keys, err := pgx.CollectRows(r, pgx.RowTo[string])
		var out []string
		for _, k := range keys {
			out = append(out, fmt.Sprintf("%s %s %d", table, k, txid))
		}
		return out, err
	}
	ops := 1 + rng.IntN(4)
	for op := 0; op < ops; op++ {
		save := rng.IntN(6) == 0
		if save {
			if _, err = conn.Exec(ctx, "SAVEPOINT s"); err != nil {
				return nil, nil, err
			}
		}
		var got []string
		k := 1 + rng.IntN(120)
		switch rng.IntN(11) {
		case 0:
			got, err = q("public.items", "INSERT INTO public.items (id, v) VALUES ($1, 1) ON CONFLICT DO NOTHING RETURNING id::text", k)
		case 1:
			got, err = q("public.items", "INSERT INTO public.items (id, v) VALUES ($1, 2) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v RETURNING id::text", k)
		case 2:
			got, err = q("public.items", "UPDATE public.items SET v = v + 1 WHERE id BETWEEN $1 AND $1 + 2 RETURNING id::text", k)
		case 3:
			nk := next.Add(1)
			got, err = q("public.items", "UPDATE public.items SET id = $2 WHERE id = $1 RETURNING id::text", k, nk)
			if len(got) == 1 {
				got = append(got, fmt.Sprintf("public.items %d %d", k, txid))
			}
		case 4:
			got, err = q("public.items", "DELETE FROM public.items WHERE id = $1 RETURNING id::text", k)
		case 5:
			got, err = q("App Data.Line Items", `INSERT INTO "App Data"."Line Items" VALUES ('o' || $1::int % 10, $1, 1) ON CONFLICT DO NOTHING RETURNING order_id || '|' || "Line No"`, k)
		case 6:
			got, err = q("App Data.Line Items", `UPDATE "App Data"."Line Items" SET qty = qty + 1 WHERE "Line No" = $1 RETURNING order_id || '|' || "Line No"`, k)
		case 7:
			// key update of a composite key: only one column changes
			var rs []string
			rs, err = q("App Data.Line Items", `UPDATE "App Data"."Line Items" SET order_id = order_id || 'x' WHERE "Line No" = $1 AND length(order_id) < 6 RETURNING order_id || '|' || "Line No"`, k)
			for _, r := range rs {
				got = append(got, r, strings.Replace(r, "x|", "|", 1))
			}
		case 8:
			// straight into a partition, including the one created after install
			part := []string{"public.ev_2024", "public.ev_2025", "public.ev_2026"}[rng.IntN(3)]
			day := map[string]string{"public.ev_2024": "2024-03-01", "public.ev_2025": "2025-03-01", "public.ev_2026": "2026-03-01"}[part]
			got, err = q("public.ev", "INSERT INTO "+part+" VALUES ($1, $2::date, 0) ON CONFLICT DO NOTHING RETURNING id || '|' || at", k, day)
		case 9:
			// a key update that moves the row to another partition
			var rs []string
			rs, err = q("public.ev", "UPDATE public.ev SET at = at + 365 WHERE id = $1 AND at < '2026-01-01' RETURNING id || '|' || (at - 365) || '|' || at", k)
			for _, r := range rs {
				f := strings.Fields(r)
				p := strings.Split(f[1], "|")
				got = append(got, fmt.Sprintf("public.ev %s|%s %s", p[0], p[1], f[2]), fmt.Sprintf("public.ev %s|%s %s", p[0], p[2], f[2]))
			}
		default:
			got, err = q("public.ev", "DELETE FROM public.ev WHERE id = $1 RETURNING id || '|' || at", k)
		}
		if err != nil {
			return nil, nil, err
		}
		if save {
			if rng.IntN(2) == 0 {
				if _, err = conn.Exec(ctx, "ROLLBACK TO SAVEPOINT s"); err != nil {
					return nil, nil, err
				}
				continue
			}
			if _, err = conn.Exec(ctx, "RELEASE SAVEPOINT s"); err != nil {
				return nil, nil, err
			}
		}
		rows = append(rows, got...)
	}
	return rows, nil, nil
}
