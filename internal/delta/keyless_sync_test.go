package delta

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/pgtest"
)

// keylessSchema: tables without a key. kl_small has no index and nullable columns of types with
// no = (json, point) or an inexact one (float, numeric); kl_big is found by an index on a NOT
// NULL column; kl_part is partitioned (row triggers, rows moving between partitions); kl_uniq
// has a unique index over a nullable column, which is no key; kd is keyed, for contrast.
const keylessSchema = `
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE public.kl_small (a int, f float8, n numeric, j json, p point, t text);
CREATE TABLE public.kl_big (id int NOT NULL, grp int NOT NULL, m public.mood NOT NULL, v text, at timestamptz);
CREATE INDEX kl_big_id ON public.kl_big (id);
CREATE TABLE public.kl_part (p int NOT NULL, v text) PARTITION BY LIST (p);
CREATE TABLE public.kl_part_0 PARTITION OF public.kl_part FOR VALUES IN (0);
CREATE TABLE public.kl_part_1 PARTITION OF public.kl_part FOR VALUES IN (1);
CREATE TABLE public.kl_uniq (a int UNIQUE, b text);
CREATE TABLE public.kd (id int PRIMARY KEY, v text);
`

const keylessSeed = `
INSERT INTO public.kl_small SELECT g % 50, g / 7.0, round((g % 3)::numeric, g % 3), ('{"g": ' || g % 20 || '}')::json, point(g % 4, 0), 't' || g % 30
  FROM generate_series(1, 300) g;
INSERT INTO public.kl_small VALUES (NULL, NULL, NULL, NULL, NULL, NULL), (NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO public.kl_big SELECT g % 2000, g % 7, (ARRAY['sad','ok','happy'])[1 + g % 3]::public.mood, 'v' || g % 500, '2024-01-01'::timestamptz + g * interval '1 s'
  FROM generate_series(1, 20000) g;
INSERT INTO public.kl_part SELECT g % 2, 'p' || g % 40 FROM generate_series(1, 300) g;
INSERT INTO public.kl_uniq SELECT CASE WHEN g % 5 = 0 THEN NULL ELSE g END, 'u' || g % 9 FROM generate_series(1, 200) g;
INSERT INTO public.kd SELECT g, 'k' || g FROM generate_series(1, 100) g;
`

var keylessTables = []string{"public.kl_small", "public.kl_big", "public.kl_part", "public.kl_uniq", "public.kd"}

// keylessStatements returns one random transaction's statements on the keyless tables.
func keylessStatements(rng *rand.Rand) []string {
	a, b := rng.IntN(60), rng.IntN(2100)
	switch rng.IntN(14) {
	case 0: // a duplicate of an existing row, and a row of NULLs
		return []string{`INSERT INTO public.kl_small SELECT * FROM public.kl_small ORDER BY random() LIMIT 1`,
			`INSERT INTO public.kl_small VALUES (NULL, NULL, NULL, NULL, NULL, NULL)`}
	case 1: // one copy of duplicates changes
		return []string{fmt.Sprintf(`UPDATE public.kl_small SET t = t || '!' WHERE ctid = (SELECT ctid FROM public.kl_small WHERE a = %d LIMIT 1)`, a)}
	case 2: // every copy changes; a row becomes equal to another one
		return []string{fmt.Sprintf(`UPDATE public.kl_small SET f = f * 2, n = n * 1.0 WHERE a = %d`, a),
			fmt.Sprintf(`UPDATE public.kl_small SET (a, f, n, j, p, t) = (SELECT * FROM public.kl_small WHERE a = %d LIMIT 1) WHERE ctid = (SELECT ctid FROM public.kl_small WHERE a = %d LIMIT 1)`, a, a+1)}
	case 3: // one copy goes, or every copy, or a row of NULLs
		return []string{fmt.Sprintf(`DELETE FROM public.kl_small WHERE ctid = (SELECT ctid FROM public.kl_small WHERE a = %d LIMIT 1)`, a),
			fmt.Sprintf(`DELETE FROM public.kl_small WHERE a = %d AND rng_pick()`, a+2),
			`DELETE FROM public.kl_small WHERE ctid = (SELECT ctid FROM public.kl_small WHERE a IS NULL LIMIT 1)`}
	case 4:
		if rng.IntN(6) == 0 {
			return []string{`TRUNCATE public.kl_small`, fmt.Sprintf(`INSERT INTO public.kl_small VALUES (%d, 0.1, 1.0, '[]', '(1,1)', 'after truncate'), (%[1]d, 0.1, 1.00, '[]', '(1,1)', 'after truncate')`, a)}
		}
		return []string{fmt.Sprintf(`INSERT INTO public.kl_small VALUES (%d, 0.1, 1.0, '{"x": [1, 2]}', '(2,2)', E'tab\there'), (%[1]d, 0.1, 1.00, '{"x": [1, 2]}', '(2,2)', E'tab\there')`, a)}
	case 5:
		return []string{fmt.Sprintf(`UPDATE public.kl_big SET v = v || '.', at = at + interval '1 day' WHERE id = %d`, b)}
	case 6:
		return []string{fmt.Sprintf(`INSERT INTO public.kl_big SELECT * FROM public.kl_big WHERE id = %d`, b),
			fmt.Sprintf(`DELETE FROM public.kl_big WHERE ctid = (SELECT ctid FROM public.kl_big WHERE id = %d LIMIT 1)`, b+1)}
	case 7: // a bulk statement, and a change of the indexed column
		return []string{fmt.Sprintf(`UPDATE public.kl_big SET m = 'happy', grp = grp + 1 WHERE id %% 97 = %d`, b%97),
			fmt.Sprintf(`UPDATE public.kl_big SET id = id + 5000 WHERE id = %d`, b)}
	case 8:
		return []string{fmt.Sprintf(`DELETE FROM public.kl_big WHERE id = %d`, b), fmt.Sprintf(`INSERT INTO public.kl_big VALUES (%d, 1, 'ok', NULL, NULL), (%[1]d, 1, 'ok', NULL, NULL)`, b)}
	case 9: // rows move between partitions; a write straight into a partition
		return []string{fmt.Sprintf(`UPDATE public.kl_part SET p = 1 - p WHERE v = 'p%d'`, a%40),
			fmt.Sprintf(`INSERT INTO public.kl_part_1 VALUES (1, 'direct %d')`, a)}
	case 10:
		if rng.IntN(8) == 0 {
			return []string{`TRUNCATE public.kl_part_0`, `INSERT INTO public.kl_part VALUES (0, 'after partition truncate')`}
		}
		return []string{fmt.Sprintf(`DELETE FROM public.kl_part WHERE ctid = (SELECT ctid FROM public.kl_part WHERE v = 'p%d' LIMIT 1)`, a%40)}
	case 11:
		return []string{fmt.Sprintf(`INSERT INTO public.kl_uniq VALUES (NULL, 'n%d') ON CONFLICT DO NOTHING`, a),
			fmt.Sprintf(`UPDATE public.kl_uniq SET a = NULL WHERE a = %d`, b%200)}
	case 12:
		return []string{fmt.Sprintf(`INSERT INTO public.kd VALUES (%d, 'new') ON CONFLICT (id) DO UPDATE SET v = kd.v || '+'`, b%150),
			fmt.Sprintf(`UPDATE public.kl_small SET j = '{"u": 1}' WHERE a = %d`, a)}
	}
	return []string{`DELETE FROM public.kl_big WHERE grp = 3`, "ROLLBACK-ME"} // rolled back work leaves nothing
}

// keylessWriter runs random transactions on the keyless tables until stop closes.
func keylessWriter(ctx context.Context, t *testing.T, url string, seed uint64, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close(context.Background())
	rng := rand.New(rand.NewPCG(seed, seed*13+5))
	for {
		select {
		case <-stop:
			return
		default:
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		ok := true
		for _, s := range keylessStatements(rng) {
			if s == "ROLLBACK-ME" {
				ok = false
				break
			}
			if _, err := tx.Exec(ctx, s); err != nil {
				ok = false // a deadlock or a unique clash: the transaction rolls back, as an application's would
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

func keylessSyncOptions(srcURL, dstURL string) SyncOptions {
	return SyncOptions{
		ConnectSource: func(ctx context.Context) (*pgx.Conn, error) {
			return dbconn.Connect(ctx, srcURL, dbconn.Source, dbconn.Options{})
		},
		ConnectTarget: func(ctx context.Context) (*pgx.Conn, error) {
			return dbconn.Connect(ctx, dstURL, dbconn.Target, dbconn.Options{})
		},
		CaptureSchema: "pgferry", StateSchema: "pgferry", SourceURL: srcURL, TargetURL: dstURL,
		Follow: FollowOptions{Follow: true, MaxInterval: 100 * time.Millisecond},
	}
}

// TestSyncKeyless: tables without a key, small and big, under concurrent writers (inserts,
// updates, deletes, duplicate rows, rows of NULLs, TRUNCATE, rolled back work) are equal on the
// target after catch-up; catching up again from the copy's position (every batch applied a
// second time) and a batch killed half way through (its first parts committed) leave them equal.
func TestSyncKeyless(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { syncKeyless(t, seed) })
	}
}

func syncKeyless(t *testing.T, seed uint64) {
	src := pgtest.Source(t)
	dst := pgtest.Target(t)
	src.Exec(t, keylessSchema+keylessSeed+`CREATE FUNCTION public.rng_pick() RETURNS bool LANGUAGE sql AS 'SELECT random() < 0.5'`)
	dst.Exec(t, keylessSchema)
	installCapture(t, src.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go keylessWriter(ctx, t, src.URL, seed*100+uint64(i), stop, &wg)
	}
	time.Sleep(300 * time.Millisecond)
	snapshotCopy(t, src.URL, dst.URL, keylessTables)
	copyPos, err := catchup.TargetPosition(ctx, connect(t, dst.URL), "pgferry")
	if err != nil {
		t.Fatal(err)
	}
	opts := keylessSyncOptions(src.URL, dst.URL)
	opts.MaxBatch = int64(seed%2) * 300 // every other seed commits big batches in parts
	opts.PruneEvery = -1                // keep every change, to catch up a second time from the copy's position
	began := time.Now()
	// Two more writes after the first catch-up, each followed to the target: following is
	// exercised however few batches a slow machine needed for the writers' changes.
	more := []string{`INSERT INTO public.kl_small VALUES (1, NULL, NULL, NULL, NULL, 'round 1'), (1, NULL, NULL, NULL, NULL, 'round 1')`,
		`UPDATE public.kl_small SET t = 'round 2' WHERE ctid = (SELECT ctid FROM public.kl_small WHERE t = 'round 1' LIMIT 1)`}
	res := followUntilCaughtUp(ctx, t, src.URL, dst.URL, opts, func() {
		time.Sleep(2500 * time.Millisecond)
		close(stop)
		wg.Wait()
	}, more...)
	if res.Batches < 3 {
		t.Fatalf("only %d batches: the test did not exercise following", res.Batches)
	}
	t.Logf("followed and caught up in %s", time.Since(began))
	pgtest.RequireSameData(t, src.URL, dst.URL, "pgferry")

	// Every batch again, from the copy's position: the target must not change.
	opts.From, opts.Follow.Follow = copyPos.Position, false
	began = time.Now()
	if _, err := Sync(ctx, opts); err != nil {
		t.Fatal(err)
	}
	t.Logf("caught up again from the copy's position in %s", time.Since(began))
	pgtest.RequireSameData(t, src.URL, dst.URL, "pgferry")

	// More writes, then a batch that dies after its first parts committed; a re-run repairs it.
	src.Exec(t, `UPDATE public.kl_big SET v = 'again' WHERE id < 300; DELETE FROM public.kl_small WHERE a < 10;
INSERT INTO public.kl_small SELECT * FROM public.kl_small WHERE a >= 10; TRUNCATE public.kl_uniq; INSERT INTO public.kl_uniq VALUES (NULL, 'x'), (NULL, 'x')`)
	killMidBatch(ctx, t, src.URL, dst.URL)
	opts.From = ""
	if _, err := Sync(ctx, opts); err != nil {
		t.Fatal(err)
	}
	pgtest.RequireSameData(t, src.URL, dst.URL, "pgferry")
	t.Logf("seed %d: %d batches, %d records", seed, res.Batches, res.Rows)
}

// followUntilCaughtUp runs Sync --follow while during() runs, then until caught up; then it runs
// each of more on the source and waits until the follower has caught up with it too. A write
// committed after a catch-up waits in a delta table until a batch applies it, so each one
// costs the follower (at least) one more batch.
func followUntilCaughtUp(ctx context.Context, t *testing.T, srcURL, dstURL string, opts SyncOptions, during func(), more ...string) SyncResult {
	t.Helper()
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	var syncErr error
	var res SyncResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, syncErr = Sync(fctx, opts)
	}()
	during()
	srcConn, dstConn := connect(t, srcURL), connect(t, dstURL)
	for round := 0; round <= len(more); round++ {
		if round > 0 {
			if _, err := srcConn.Exec(ctx, more[round-1]); err != nil {
				t.Fatal(err)
			}
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			st, err := ReadStatus(ctx, srcConn, dstConn, "pgferry", "pgferry")
			if err != nil {
				t.Fatal(err)
			}
			if st.CaughtUp {
				break
			}
			if time.Now().After(deadline) {
				fcancel()
				<-done
				t.Fatalf("follower did not catch up (round %d): %+v (sync: %v)", round, st, syncErr)
			}
		}
	}
	fcancel()
	<-done
	if !errors.Is(syncErr, context.Canceled) {
		t.Fatalf("sync ended with %v", syncErr)
	}
	return res
}

// errKilled is what failingSink returns in place of a crash.
var errKilled = errors.New("killed")

// failingSink passes records on and fails (as a crash would) after n of them.
type failingSink struct {
	Sink
	n int
}

func (f *failingSink) tick() error {
	if f.n--; f.n < 0 {
		return errKilled
	}
	return nil
}

func (f *failingSink) Rows(table string, cols []string, vals [][]byte, n int64) error {
	if err := f.tick(); err != nil {
		return err
	}
	return f.Sink.Rows(table, cols, vals, n)
}

func (f *failingSink) Upsert(table string, cols []string, vals [][]byte) error {
	if err := f.tick(); err != nil {
		return err
	}
	return f.Sink.Upsert(table, cols, vals)
}

// killMidBatch applies the next batch in parts of 5 records and dies after 12 of them: two
// parts are committed, the position stays where it was.
func killMidBatch(ctx context.Context, t *testing.T, srcURL, dstURL string) {
	t.Helper()
	dst, err := pgx.Connect(ctx, dstURL)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close(context.Background()) // its staging tables go with it
	a, err := NewApplier(ctx, dst, "pgferry")
	if err != nil {
		t.Fatal(err)
	}
	pos, err := catchup.TargetPosition(ctx, dst, "pgferry")
	if err != nil {
		t.Fatal(err)
	}
	src, err := dbconn.Connect(ctx, srcURL, dbconn.Source, dbconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	r := &Reader{Conn: src, CaptureSchema: "pgferry", MaxBatch: 5}
	if _, err := r.Batch(ctx, pos.Position, &failingSink{Sink: a.AsSink(ctx), n: 12}, false); !errors.Is(err, errKilled) {
		t.Fatalf("batch: %v, want it killed", err)
	}
	a.Abort(ctx)
	after, err := catchup.TargetPosition(ctx, dst, "pgferry")
	if err != nil || after.Position != pos.Position {
		t.Fatalf("position moved from %s to %s (%v)", pos.Position, after.Position, err)
	}
}
