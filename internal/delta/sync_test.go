package delta

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/state"
)

// modelSchema has quoted names, a unique column, a composite text key, a partitioned table and
// an identity column.
const modelSchema = `
CREATE SCHEMA "App Data";
CREATE TABLE "App Data"."Accts"(id int PRIMARY KEY, email text NOT NULL UNIQUE, bal numeric(12,2), note text);
CREATE TABLE public.items(k1 text, k2 int, v jsonb, at timestamptz, PRIMARY KEY (k1, k2));
CREATE TABLE public.ev(id int, part int, v text, PRIMARY KEY (id, part)) PARTITION BY LIST (part);
CREATE TABLE public.ev_0 PARTITION OF public.ev FOR VALUES IN (0);
CREATE TABLE public.ev_1 PARTITION OF public.ev FOR VALUES IN (1);
CREATE TABLE public.logs(id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, msg text);
`

const modelSeed = `
INSERT INTO "App Data"."Accts" SELECT g, 'u' || g || '@x', g * 1.5, NULL FROM generate_series(1, 200) g;
INSERT INTO public.items SELECT 'k' || (g % 7), g, jsonb_build_object('g', g), now() FROM generate_series(1, 200) g;
INSERT INTO public.ev SELECT g, g % 2, 'e' || g FROM generate_series(1, 200) g;
INSERT INTO public.logs(msg) SELECT 'm' || g FROM generate_series(1, 50) g;
`

// snapshotCopy copies every user table under one REPEATABLE READ snapshot and records it as the
// copy position in copy_chunks, like pgcopyout | pgcopyin.
func snapshotCopy(t *testing.T, srcURL, dstURL string, tables []string) {
	t.Helper()
	ctx := context.Background()
	src := connect(t, srcURL)
	dst := connect(t, dstURL)
	tx, err := src.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var snap string
	if err := tx.QueryRow(ctx, "SELECT txid_current_snapshot()::text").Scan(&snap); err != nil {
		t.Fatal(err)
	}
	if err := state.Ensure(ctx, dst, "pgferry"); err != nil {
		t.Fatal(err)
	}
	for i, tb := range tables {
		var buf strings.Builder
		if _, err := tx.Conn().PgConn().CopyTo(ctx, &buf, "COPY (SELECT * FROM "+tb+") TO STDOUT"); err != nil {
			t.Fatal(err)
		}
		if _, err := dst.PgConn().CopyFrom(ctx, strings.NewReader(buf.String()), "COPY "+tb+" FROM STDIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := dst.Exec(ctx, "INSERT INTO pgferry.copy_chunks(table_name, chunk, snapshot, rows, bytes) VALUES ($1, 0, $2, 0, 0)", fmt.Sprint(i), snap); err != nil {
			t.Fatal(err)
		}
	}
}

func installCapture(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	if _, err := capture.Install(ctx, connect(t, url), capture.InstallOptions{Schema: "pgferry"}); err != nil {
		t.Fatal(err)
	}
}

// writer runs random transactions until stop closes.
func writer(ctx context.Context, t *testing.T, url string, seed uint64, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close(context.Background())
	rng := rand.New(rand.NewPCG(seed, seed*7+1))
	for {
		select {
		case <-stop:
			return
		default:
		}
		id := rng.IntN(260) + 1
		id2 := rng.IntN(260) + 1
		var stmts []string
		switch rng.IntN(10) {
		case 0:
			stmts = []string{fmt.Sprintf(`INSERT INTO "App Data"."Accts" VALUES (%d, 'n%d-%d@x', %d, 'ins') ON CONFLICT DO NOTHING`, id, id, rng.IntN(1e6), id)}
		case 1:
			stmts = []string{fmt.Sprintf(`UPDATE "App Data"."Accts" SET bal = bal + 1, note = E'n\t%d' WHERE id = %d`, rng.IntN(100), id)}
		case 2:
			stmts = []string{fmt.Sprintf(`DELETE FROM "App Data"."Accts" WHERE id = %d`, id)}
		case 3: // primary key change
			stmts = []string{fmt.Sprintf(`UPDATE "App Data"."Accts" SET id = %d WHERE id = %d AND NOT EXISTS (SELECT 1 FROM "App Data"."Accts" WHERE id = %d)`, id2+300, id, id2+300)}
		case 4: // unique-column swap in one transaction
			stmts = []string{
				fmt.Sprintf(`UPDATE "App Data"."Accts" SET email = 'tmp-' || email WHERE id = %d`, id),
				fmt.Sprintf(`UPDATE "App Data"."Accts" SET email = (SELECT substr(email, 5) FROM "App Data"."Accts" WHERE id = %d) || '' WHERE id = %d AND EXISTS (SELECT 1 FROM "App Data"."Accts" WHERE id = %d)`, id, id2, id),
				fmt.Sprintf(`UPDATE "App Data"."Accts" SET email = 'sw%d-%d@x' WHERE id = %d`, id, rng.IntN(1e6), id),
			}
		case 5:
			stmts = []string{fmt.Sprintf(`INSERT INTO public.items VALUES ('k%d', %d, '{"a":[1,2]}', now()) ON CONFLICT (k1, k2) DO UPDATE SET v = jsonb_build_object('u', %d)`, id%7, id, rng.IntN(100))}
		case 6:
			if rng.IntN(10) == 0 { // TRUNCATE of one partition, recorded under the captured root
				stmts = []string{`TRUNCATE public.ev_1`, fmt.Sprintf(`INSERT INTO public.ev_1 VALUES (%d, 1, 'after partition truncate')`, id)}
				break
			}
			stmts = []string{fmt.Sprintf(`UPDATE public.ev SET part = 1 - part, v = v || '.' WHERE id = %d`, id), fmt.Sprintf(`INSERT INTO public.ev VALUES (%d, %d, 'new') ON CONFLICT DO NOTHING`, id2, id2%2)}
		case 7:
			stmts = []string{`INSERT INTO public.logs(msg) VALUES ('w')`, fmt.Sprintf(`DELETE FROM public.items WHERE k2 = %d`, id)}
		case 8:
			if rng.IntN(8) == 0 {
				stmts = []string{`TRUNCATE public.logs`, `INSERT INTO public.logs(msg) VALUES ('after truncate')`}
			} else {
				stmts = []string{fmt.Sprintf(`UPDATE public.logs SET msg = msg || '!' WHERE id %% 10 = %d`, id%10)}
			}
		case 9: // rolled back work leaves nothing
			stmts = []string{fmt.Sprintf(`DELETE FROM "App Data"."Accts" WHERE id < %d`, id), "ROLLBACK-ME"}
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		ok := true
		for _, s := range stmts {
			if s == "ROLLBACK-ME" {
				ok = false
				break
			}
			if _, err := tx.Exec(ctx, s); err != nil {
				ok = false // unique clash, deadlock: the transaction rolls back, as an application's would
				break
			}
		}
		if ok {
			tx.Commit(ctx)
		} else {
			tx.Rollback(ctx)
		}
	}
}

func TestSyncModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { syncModel(t, seed) })
	}
}

func syncModel(t *testing.T, seed uint64) {
	src := pgtest.Source(t)
	dst := pgtest.Target(t)
	src.Exec(t, modelSchema+modelSeed)
	dst.Exec(t, modelSchema)
	installCapture(t, src.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// One transaction stays open across many batches and commits late.
	long, err := pgx.Connect(ctx, src.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close(context.Background())
	longTx, err := long.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := longTx.Exec(ctx, `INSERT INTO "App Data"."Accts" VALUES (9999, 'late@x', 1, 'late'); INSERT INTO public.items SELECT 'long', g, '"late"', now() FROM generate_series(1, 20) g`); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go writer(ctx, t, src.URL, seed*100+uint64(i), stop, &wg)
	}
	time.Sleep(300 * time.Millisecond)
	snapshotCopy(t, src.URL, dst.URL, []string{`"App Data"."Accts"`, "public.items", "public.ev", "public.logs"})

	opts := SyncOptions{
		ConnectSource: func(ctx context.Context) (*pgx.Conn, error) {
			return dbconn.Connect(ctx, src.URL, dbconn.Source, dbconn.Options{})
		},
		ConnectTarget: func(ctx context.Context) (*pgx.Conn, error) {
			return dbconn.Connect(ctx, dst.URL, dbconn.Target, dbconn.Options{})
		},
		CaptureSchema: "pgferry", StateSchema: "pgferry",
		MaxBatch:   int64(seed%2) * 50, // every other seed commits big batches in parts
		PruneEvery: 200 * time.Millisecond,
		Follow:     FollowOptions{Follow: true, MaxInterval: 100 * time.Millisecond},
	}
	// The follower must catch up by itself; then, so that following is exercised however few
	// batches a slow machine needed so far, two more writes are each followed to the target.
	round := func(n int) string {
		return fmt.Sprintf(`UPDATE "App Data"."Accts" SET note = 'round %d' WHERE id = 9999`, n)
	}
	res := followUntilCaughtUp(ctx, t, src.URL, dst.URL, opts, func() {
		time.Sleep(1500 * time.Millisecond)
		lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
		defer lcancel()
		if _, err := longTx.Exec(lctx, `UPDATE "App Data"."Accts" SET note = 'late2' WHERE id = 9999`); err != nil {
			rows, _ := connect(t, src.URL).Query(ctx, "SELECT pid, state, wait_event_type, wait_event, pg_blocking_pids(pid)::text, left(query, 100) FROM pg_stat_activity WHERE datname = current_database()")
			for rows.Next() {
				v, _ := rows.Values()
				t.Log(v...)
			}
			t.Fatal(err)
		}
		lcancel()
		time.Sleep(1000 * time.Millisecond)
		close(stop)
		wg.Wait()
		if err := longTx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}, round(1), round(2))
	if res.Batches < 3 {
		t.Fatalf("only %d batches: the test did not exercise following", res.Batches)
	}
	pgtest.RequireSameData(t, src.URL, dst.URL, "pgferry")
	if got := pgtest.TableDump(t, dst.URL, `"App Data"."Accts"`, []string{"id", "note"}); !contains(got, "9999\tround 2") {
		t.Fatal("the late-committing transaction's row is missing on the target")
	}
	if res.Pruned == 0 {
		t.Fatal("sync pruned nothing")
	}
	t.Logf("seed %d: %d batches, %d rows, %d pruned", seed, res.Batches, res.Rows, res.Pruned)
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}
