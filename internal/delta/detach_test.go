package delta

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/deltarec"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgtest"
)

var ownerSeq atomic.Int64

// ownerURL creates an ordinary role (no superuser) that may create schemas in db and owns what
// it creates there, and returns db's URL for it: the tables, the capture and pgdelta's DDL on the
// target all run as that role, as an application's owner role would.
func ownerURL(t *testing.T, db *pgtest.DB) string {
	t.Helper()
	role := fmt.Sprintf("detach_own_%d_%d", time.Now().UnixNano()%1e6, ownerSeq.Add(1))
	db.Exec(t, fmt.Sprintf(`CREATE ROLE %[1]s LOGIN NOSUPERUSER; GRANT CREATE, CONNECT ON DATABASE %[2]s TO %[1]s;
GRANT USAGE, CREATE ON SCHEMA public TO %[1]s`, role, ident.Quote(db.Name)))
	return db.URLAs(role)
}

// partedSchema is a partitioned table of three leaf partitions and one sub-partitioned one.
const partedSchema = `CREATE TABLE public.ev(id int, part int, v text, PRIMARY KEY (id, part)) PARTITION BY LIST (part);
CREATE TABLE public.ev_0 PARTITION OF public.ev FOR VALUES IN (0); CREATE TABLE public.ev_1 PARTITION OF public.ev FOR VALUES IN (1);
CREATE TABLE public.ev_2 PARTITION OF public.ev FOR VALUES IN (2); CREATE TABLE public.ev_3 PARTITION OF public.ev FOR VALUES IN (3) PARTITION BY RANGE (id);
CREATE TABLE public.ev_3a PARTITION OF public.ev_3 FOR VALUES FROM (MINVALUE) TO (200); CREATE TABLE public.ev_3b PARTITION OF public.ev_3 FOR VALUES FROM (200) TO (MAXVALUE);`

// partedPair makes a source and a target holding public.ev (400 rows) copied under one snapshot
// with capture installed, and returns their URLs for owner roles.
func partedPair(t *testing.T) (src, dst string) {
	t.Helper()
	sdb, ddb := pgtest.Source(t), pgtest.Target(t)
	src, dst = ownerURL(t, sdb), ownerURL(t, ddb)
	execURL(t, src, partedSchema+`INSERT INTO public.ev SELECT g, g % 4, 'e' FROM generate_series(1, 400) g`)
	execURL(t, dst, partedSchema)
	installCapture(t, src)
	snapshotCopy(t, src, dst, []string{"public.ev"})
	return src, dst
}

func execURL(t *testing.T, url, sql string) {
	t.Helper()
	if _, err := connect(t, url).Exec(context.Background(), sql); err != nil {
		t.Fatalf("exec: %v\nSQL: %s", err, sql)
	}
}

// syncURLs runs one catch-up to the present from the target's position with --partition-removed mode.
func syncURLs(t *testing.T, src, dst, mode string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var log strings.Builder
	_, err := Sync(ctx, SyncOptions{
		ConnectSource: func(ctx context.Context) (*pgx.Conn, error) {
			return dbconn.Connect(ctx, src, dbconn.Source, dbconn.Options{})
		},
		ConnectTarget: func(ctx context.Context) (*pgx.Conn, error) {
			return dbconn.Connect(ctx, dst, dbconn.Target, dbconn.Options{})
		},
		CaptureSchema: "pgferry", StateSchema: "pgferry", PartitionRemoved: mode, Log: &log,
	})
	t.Logf("sync log:\n%s", log.String())
	return err
}

// relState says what the database holds under name: "missing", "partition of PARENT" or "table".
func relState(t *testing.T, url, name string) string {
	t.Helper()
	var s string
	if err := connect(t, url).QueryRow(context.Background(), `SELECT CASE WHEN to_regclass($1) IS NULL THEN 'missing'
  ELSE coalesce((SELECT 'partition of ' || inhparent::regclass::text FROM pg_inherits WHERE inhrelid = to_regclass($1)), 'table') END`, name).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// registryPartitions is the source's registry list of public.ev's partitions (names only).
func registryPartitions(t *testing.T, url string) []string {
	t.Helper()
	var list []string
	if err := connect(t, url).QueryRow(context.Background(), "SELECT partitions FROM pgferry.capture_tables WHERE table_name = 'public.ev'").Scan(&list); err != nil {
		t.Fatal(err)
	}
	for i, p := range list {
		_, list[i], _ = strings.Cut(p, " ")
	}
	return list
}

func requireState(t *testing.T, url, name, want string) {
	t.Helper()
	if got := relState(t, url, name); got != want {
		t.Errorf("%s: %s, want %s", name, got, want)
	}
}

// TestSyncPartitionDetached: rows of a partition changed just before its DETACH, in the same
// batch, reach the target's copy of it; the target detaches it too (and a sub-partitioned
// partition with its leaves), ending with the same parent and the same standalone tables as the
// source; the registry forgets them. Writes and a TRUNCATE of the standalone table afterwards
// (it is no longer followed) leave the target's parent equal to the source's and its copy as it was.
func TestSyncPartitionDetached(t *testing.T) {
	src, dst := partedPair(t)
	execURL(t, src, `UPDATE public.ev SET v = 'before detach' WHERE part = 0 AND id < 100; DELETE FROM public.ev WHERE part = 0 AND id > 300;
INSERT INTO public.ev_0 VALUES (1000, 0, 'new before detach'); UPDATE public.ev SET v = 'moved out', part = 1 WHERE id = 4;
UPDATE public.ev SET v = 'sub' WHERE part = 3 AND id < 50;
ALTER TABLE public.ev DETACH PARTITION public.ev_0; ALTER TABLE public.ev DETACH PARTITION public.ev_3;
UPDATE public.ev SET v = 'after' WHERE part = 1 AND id < 60`)
	if err := syncURLs(t, src, dst, ""); err != nil {
		t.Fatal(err)
	}
	pgtest.RequireSameData(t, src, dst) // ev, and the standalone ev_0 and ev_3 on both sides
	requireState(t, dst, "public.ev_0", "table")
	requireState(t, dst, "public.ev_3", "table")
	requireState(t, dst, "public.ev_3a", "partition of ev_3")
	if got, want := registryPartitions(t, src), []string{"public.ev_1", "public.ev_2"}; !slices.Equal(got, want) {
		t.Errorf("registry lists %v after the sync, want %v", got, want)
	}
	archive := pgtest.TableDump(t, dst, "public.ev_0", nil)
	execURL(t, src, `INSERT INTO public.ev_0 VALUES (2000, 0, 'standalone'), (2001, 1, 'out of its old bounds');
UPDATE public.ev_0 SET v = 'standalone update' WHERE id < 20; DELETE FROM public.ev_0 WHERE id BETWEEN 20 AND 40;
INSERT INTO public.ev VALUES (2000, 1, 'parent'); UPDATE public.ev SET v = 'parent update' WHERE part = 2 AND id < 30`)
	if err := syncURLs(t, src, dst, ""); err != nil {
		t.Fatal(err)
	}
	pgtest.RequireSameTable(t, src, dst, "public.ev")
	if got := pgtest.TableDump(t, dst, "public.ev_0", nil); !slices.Equal(got, archive) {
		t.Errorf("the target's detached public.ev_0 changed after the detach (%d rows, %d before)", len(got), len(archive))
	}
	execURL(t, src, `TRUNCATE public.ev_0; UPDATE public.ev SET v = 'after truncate' WHERE part = 1 AND id < 10`)
	if err := syncURLs(t, src, dst, ""); err != nil {
		t.Fatal(err)
	}
	pgtest.RequireSameTable(t, src, dst, "public.ev")
	if got := pgtest.TableDump(t, dst, "public.ev_0", nil); !slices.Equal(got, archive) {
		t.Errorf("a TRUNCATE of the source's standalone public.ev_0 reached the target's (%d rows, %d before)", len(got), len(archive))
	}
}

// TestSyncPartitionDropped: a partition whose rows were changed and which was then DROPped, in the
// same batch: by default (follow) the target's partition is dropped too; with keep it is detached
// and kept with the rows it had; either way the parents end equal.
func TestSyncPartitionDropped(t *testing.T) {
	for _, mode := range []string{PartitionFollow, PartitionKeep} {
		t.Run(mode, func(t *testing.T) {
			src, dst := partedPair(t)
			execURL(t, src, `UPDATE public.ev SET v = 'u1' WHERE part = 1 AND id < 100`)
			if err := syncURLs(t, src, dst, mode); err != nil {
				t.Fatal(err)
			}
			kept := pgtest.TableDump(t, dst, "public.ev_1", nil)
			execURL(t, src, `UPDATE public.ev SET v = 'before drop' WHERE part = 1 AND id < 200; INSERT INTO public.ev VALUES (1001, 1, 'x');
DROP TABLE public.ev_1; DROP TABLE public.ev_3; UPDATE public.ev SET v = 'after' WHERE part = 2 AND id < 50`)
			if err := syncURLs(t, src, dst, mode); err != nil {
				t.Fatal(err)
			}
			pgtest.RequireSameTable(t, src, dst, "public.ev")
			if mode == PartitionFollow {
				pgtest.RequireSameData(t, src, dst)
				requireState(t, dst, "public.ev_1", "missing")
				requireState(t, dst, "public.ev_3b", "missing")
			} else {
				requireState(t, dst, "public.ev_1", "table")
				requireState(t, dst, "public.ev_3", "table")
				if got := pgtest.TableDump(t, dst, "public.ev_1", nil); !slices.Equal(got, kept) || len(got) != 100 {
					t.Errorf("kept public.ev_1 has %d rows, want the %d it had before the drop", len(got), len(kept))
				}
			}
			if got, want := registryPartitions(t, src), []string{"public.ev_0", "public.ev_2"}; !slices.Equal(got, want) {
				t.Errorf("registry lists %v after the sync, want %v", got, want)
			}
		})
	}
}

// TestPartitionRemovalRerun: a removal applied on the target but not yet forgotten in the
// source's registry (a kill between the target's commit and the bookkeeping) is seen again by the
// next batch and is a no-op there: by sync (registry reset), and by the same stream applied twice
// through pgdelta apply, whose bookkeeping is PruneTarget's.
func TestPartitionRemovalRerun(t *testing.T) {
	src, dst := partedPair(t)
	ctx := context.Background()
	var install []string
	if err := connect(t, src).QueryRow(ctx, "SELECT partitions FROM pgferry.capture_tables WHERE table_name = 'public.ev'").Scan(&install); err != nil {
		t.Fatal(err)
	}
	execURL(t, src, `UPDATE public.ev SET v = 'before' WHERE part IN (0, 2) AND id < 100;
ALTER TABLE public.ev DETACH PARTITION public.ev_0; DROP TABLE public.ev_2`)
	if err := syncURLs(t, src, dst, ""); err != nil {
		t.Fatal(err)
	}
	pgtest.RequireSameData(t, src, dst)
	reset := func() {
		if _, err := connect(t, src).Exec(ctx, "UPDATE pgferry.capture_tables SET partitions = $1 WHERE table_name = 'public.ev'", install); err != nil {
			t.Fatal(err)
		}
	}
	reset()
	execURL(t, src, `UPDATE public.ev SET v = 'again' WHERE part = 1 AND id < 30`)
	if err := syncURLs(t, src, dst, ""); err != nil {
		t.Fatalf("sync after the registry lost the removal: %v", err)
	}
	pgtest.RequireSameData(t, src, dst)
	if got := registryPartitions(t, src); len(got) != 4 || slices.Contains(got, "public.ev_0") || slices.Contains(got, "public.ev_2") {
		t.Errorf("registry lists %v after the re-run", got)
	}

	// The same through stream | apply: one batch written once, applied twice.
	reset()
	execURL(t, src, `UPDATE public.ev SET v = 'streamed' WHERE part = 1 AND id < 40`)
	var from string
	if err := connect(t, dst).QueryRow(ctx, "SELECT position FROM pgferry.apply_position").Scan(&from); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := deltarec.NewWriter(&buf)
	if _, err := (&Reader{Conn: connect(t, src), CaptureSchema: "pgferry"}).Batch(ctx, from, w, false); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	for _, op := range []string{`"op":"detach_partition","table":"public.ev","partition":"public.ev_0"`, `"op":"drop_partition","table":"public.ev","partition":"public.ev_2"`} {
		if !strings.Contains(buf.String(), op) {
			t.Errorf("stream lacks %s:\n%s", op, buf.String())
		}
	}
	for i := 0; i < 2; i++ {
		a, err := NewApplier(ctx, connect(t, dst), "pgferry")
		if err != nil {
			t.Fatal(err)
		}
		if err := ApplyInput(ctx, a, bytes.NewReader(buf.Bytes())); err != nil {
			t.Fatalf("apply %d: %v", i+1, err)
		}
	}
	pgtest.RequireSameData(t, src, dst)
	if _, _, err := PruneTarget(ctx, connect(t, src), connect(t, dst), "pgferry", "pgferry", dst, nil); err != nil {
		t.Fatal(err)
	}
	if got := registryPartitions(t, src); len(got) != 4 || slices.Contains(got, "public.ev_0") || slices.Contains(got, "public.ev_2") {
		t.Errorf("registry lists %v after pgdelta prune", got)
	}
}

// TestSyncPartitionDetachPending (14+): a DETACH ... CONCURRENTLY interrupted after its first
// transaction leaves the partition pending: still in pg_inherits (its row rewritten, so it must
// not pass for a new attach either), but no longer returned by its parent. It is followed as a
// detach, with its last changes; the FINALIZE later changes nothing more.
func TestSyncPartitionDetachPending(t *testing.T) {
	src, dst := partedPair(t)
	ctx := context.Background()
	var v int
	if err := connect(t, src).QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v < 140000 {
		t.Skipf("server %d has no DETACH PARTITION ... CONCURRENTLY", v)
	}
	execURL(t, src, `UPDATE public.ev SET v = 'before detach' WHERE part = 0 AND id < 100`)
	old := connect(t, src) // a snapshot older than the detach's first transaction: its second one waits for it
	tx, err := old.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT count(*) FROM public.ev"); err != nil {
		t.Fatal(err)
	}
	detacher, ctl := connect(t, src), connect(t, src)
	pid := detacher.PgConn().PID()
	done := make(chan error, 1)
	go func() {
		_, err := detacher.Exec(ctx, "ALTER TABLE public.ev DETACH PARTITION public.ev_0 CONCURRENTLY")
		done <- err
	}()
	// Wait for its second transaction to wait for the old snapshot, then cancel it there.
	for waiting := false; !waiting; time.Sleep(50 * time.Millisecond) {
		if err := ctl.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = 'public.ev_0'::regclass AND inhdetachpending)
  AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock')`, pid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ctl.Exec(ctx, "SELECT pg_cancel_backend($1)", int(pid)); err != nil {
		t.Fatal(err)
	}
	err = <-done
	tx.Rollback(ctx)
	var pending bool
	if qerr := connect(t, src).QueryRow(ctx, "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = 'public.ev_0'::regclass").Scan(&pending); qerr != nil || !pending {
		t.Fatalf("the interrupted detach (%v) left no pending detach: %v, %v", err, pending, qerr)
	}
	execURL(t, src, `UPDATE public.ev SET v = 'after' WHERE part = 1 AND id < 60`)
	if err := syncURLs(t, src, dst, ""); err != nil {
		t.Fatal(err)
	}
	pgtest.RequireSameTable(t, src, dst, "public.ev")
	pgtest.RequireSameTable(t, src, dst, "public.ev_0")
	requireState(t, dst, "public.ev_0", "table")
	execURL(t, src, `ALTER TABLE public.ev DETACH PARTITION public.ev_0 FINALIZE`)
	execURL(t, src, `UPDATE public.ev SET v = 'finalized' WHERE part = 1 AND id < 30`)
	if err := syncURLs(t, src, dst, ""); err != nil {
		t.Fatal(err)
	}
	pgtest.RequireSameData(t, src, dst)
	requireState(t, dst, "public.ev_0", "table")
}

// TestSyncPartitionRemovedKeyless: a table without a key (captured as whole rows) follows a
// DETACH and a DROP of partitions whose rows changed in the same batch: its parent ends equal.
func TestSyncPartitionRemovedKeyless(t *testing.T) {
	sdb, ddb := pgtest.Source(t), pgtest.Target(t)
	src, dst := ownerURL(t, sdb), ownerURL(t, ddb)
	schema := `CREATE TABLE public.lg(part int, v text) PARTITION BY LIST (part);
CREATE TABLE public.lg_0 PARTITION OF public.lg FOR VALUES IN (0); CREATE TABLE public.lg_1 PARTITION OF public.lg FOR VALUES IN (1);
CREATE TABLE public.lg_2 PARTITION OF public.lg FOR VALUES IN (2);`
	execURL(t, src, schema+`INSERT INTO public.lg SELECT g % 3, 'r' || (g % 7) FROM generate_series(1, 300) g`)
	execURL(t, dst, schema)
	installCapture(t, src)
	snapshotCopy(t, src, dst, []string{"public.lg"})
	execURL(t, src, `UPDATE public.lg SET v = 'changed' WHERE part IN (0, 1) AND v = 'r1'; INSERT INTO public.lg VALUES (2, 'new');
ALTER TABLE public.lg DETACH PARTITION public.lg_0; DROP TABLE public.lg_1`)
	if err := syncURLs(t, src, dst, ""); err != nil {
		t.Fatal(err)
	}
	pgtest.RequireSameTable(t, src, dst, "public.lg")
	requireState(t, dst, "public.lg_0", "table")
	requireState(t, dst, "public.lg_1", "missing")
}
