package capture

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/ident"
)

// fenceSetup is an ordinary table (statement triggers) and a partitioned one (row trigger, cloned),
// written by the writer role.
const fenceSetup = `
CREATE TABLE public.items (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
CREATE TABLE public.ev (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.ev_a PARTITION OF public.ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO public.items SELECT g FROM generate_series(1, 5) g;
INSERT INTO public.ev VALUES (1, '2024-05-01');`

// newFenceDB is fenceSetup captured, the writer allowed every write; it returns the owner's connection.
func newFenceDB(t *testing.T) (*ownerDB, *pgx.Conn) {
	t.Helper()
	db := newOwnerDB(t, fenceSetup)
	db.ExecAs(t, db.Owner, "GRANT ALL ON public.items, public.ev, public.ev_a TO "+ident.Quote(db.Writer))
	conn := db.Conn(t, db.Owner)
	if _, err := Install(context.Background(), conn, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	return db, conn
}

// requireFenced runs sql and fails unless the fence refused it, raised by a function whose name
// contains fn (the error's context).
func requireFenced(t *testing.T, conn *pgx.Conn, sql, fn string) {
	t.Helper()
	_, err := conn.Exec(context.Background(), sql)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || !IsFenceError(err) {
		t.Fatalf("%s: got %v, want the fence's error", sql, err)
	}
	if pe.Code != FenceSQLState || pe.Hint != FenceHint || !strings.Contains(pe.Where, fn) {
		t.Errorf("%s: code %s, hint %q, context %q; want %s, the fence's hint, raised in %s", sql, pe.Code, pe.Hint, pe.Where, FenceSQLState, fn)
	}
}

func mustExecConn(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func fenceUp(t *testing.T, conn *pgx.Conn) *Fence {
	t.Helper()
	f, err := FenceUp(context.Background(), conn, "")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFenceEveryTriggerKind raises the fence and checks that every capture trigger refuses
// writes of every role and every session, while pgferry's own tables stay writable; then lowers it.
func TestFenceEveryTriggerKind(t *testing.T) {
	db, owner := newFenceDB(t)
	ctx := context.Background()
	writer := db.Conn(t, db.Writer)
	st, err := GetFenceState(ctx, owner, "")
	if err != nil || st.Up || st.Problem != "" {
		t.Fatalf("fresh install: state %+v, %v; want down and able to hold", st, err)
	}
	before := deltaRows(t, owner, DefaultSchema)
	f := fenceUp(t, owner)
	if f.WasUp || f.Position == "" {
		t.Fatalf("fence up: %+v", f)
	}
	items, ev := FuncName(relidOf(t, owner, "public.items")), FuncName(relidOf(t, owner, "public.ev"))
	mustExecConn(t, writer, "SET default_transaction_read_only = off")
	for _, conn := range []*pgx.Conn{writer, owner} {
		requireFenced(t, conn, "INSERT INTO public.items VALUES (100)", items+"_i")
		requireFenced(t, conn, "UPDATE public.items SET v = 1 WHERE id = 1", items+"_u")
		requireFenced(t, conn, "UPDATE public.items SET id = 200 WHERE id = 2", items+"_k")
		requireFenced(t, conn, "DELETE FROM public.items WHERE id = 3", items+"_d")
		requireFenced(t, conn, "TRUNCATE public.items", "capture_truncate")
		requireFenced(t, conn, "INSERT INTO public.ev VALUES (2, '2024-06-01')", ev+"()")
		requireFenced(t, conn, "INSERT INTO public.ev_a VALUES (3, '2024-06-01')", ev+"()")
		requireFenced(t, conn, "UPDATE public.ev SET id = 4", ev+"()")
		requireFenced(t, conn, "DELETE FROM public.ev", ev+"()")
		requireFenced(t, conn, "TRUNCATE public.ev_a", "capture_truncate")
	}
	// pgferry's own writes: marks, and pruning a delta table
	if _, err := Mark(ctx, owner, ""); err != nil {
		t.Errorf("mark while fenced: %v", err)
	}
	mustExecConn(t, owner, fmt.Sprintf("DELETE FROM pgferry.%s WHERE false", DeltaName(relidOf(t, owner, "public.items"))))
	diffLines(t, "delta rows after refused writes", deltaRows(t, owner, DefaultSchema), before)
	if st, _ := GetFenceState(ctx, owner, ""); !st.Up || st.Since == nil || st.Since.Sub(f.Since).Abs() > time.Millisecond {
		t.Errorf("state while up: %+v, fence %+v", st, f)
	}
	if again := fenceUp(t, owner); !again.WasUp || !again.Since.Equal(f.Since) {
		t.Errorf("raising a raised fence: %+v, want was_up and the first since %s", again, f.Since)
	}
	for i, want := range []bool{true, false} {
		if was, err := FenceDown(ctx, owner, ""); err != nil || was != want {
			t.Fatalf("fence down #%d: was up %v, %v; want %v", i+1, was, err, want)
		}
	}
	mustExecConn(t, writer, "INSERT INTO public.items VALUES (100); TRUNCATE public.ev_a")
}

// TestFenceRepeatableReadOpenedBefore: a REPEATABLE READ transaction whose snapshot predates the
// fence cannot write after it (the fence is not MVCC), whether it wrote before or not.
func TestFenceRepeatableReadOpenedBefore(t *testing.T) {
	db, owner := newFenceDB(t)
	ctx := context.Background()
	reader, wrote := db.Conn(t, db.Writer), db.Conn(t, db.Writer)
	mustExecConn(t, reader, "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM public.items")
	mustExecConn(t, wrote, "BEGIN ISOLATION LEVEL REPEATABLE READ; INSERT INTO public.items VALUES (50)")
	f := fenceUp(t, owner)
	requireFenced(t, reader, "INSERT INTO public.items VALUES (51)", "_i")
	requireFenced(t, wrote, "UPDATE public.items SET v = 2 WHERE id = 50", "_u")
	mustExecConn(t, reader, "ROLLBACK")
	mustExecConn(t, wrote, "ROLLBACK")
	if _, err := FenceWait(ctx, owner, FenceWaitOptions{Position: f.Position, Timeout: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
}

// TestFenceWaitsForInProgress: the proof returns only after a transaction that wrote before the
// fence has ended, and its commit is visible in the proving snapshot.
func TestFenceWaitsForInProgress(t *testing.T) {
	db, owner := newFenceDB(t)
	ctx := context.Background()
	w := db.Conn(t, db.Writer)
	var x int64
	mustExecConn(t, w, "BEGIN; INSERT INTO public.items VALUES (60)")
	if err := w.QueryRow(ctx, "SELECT txid_current()").Scan(&x); err != nil {
		t.Fatal(err)
	}
	f := fenceUp(t, owner)
	var progress syncBuffer
	type result struct {
		p   *FenceProof
		err error
	}
	done := make(chan result, 1)
	waiter := db.Conn(t, db.Owner)
	go func() {
		p, err := FenceWait(ctx, waiter, FenceWaitOptions{Position: f.Position, Timeout: time.Minute, Progress: &progress})
		done <- result{p, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("the wait returned while txid %d was in progress: %+v, %v", x, r.p, r.err)
	case <-time.After(1500 * time.Millisecond):
	}
	if !strings.Contains(progress.String(), fmt.Sprintf("txid %d: pid", x)) {
		t.Errorf("the wait did not list the transaction it waits for:\n%s", progress.String())
	}
	mustExecConn(t, w, "COMMIT")
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	var visible bool
	if err := owner.QueryRow(ctx, "SELECT txid_visible_in_snapshot($1, $2::txid_snapshot)", x, r.p.Proof).Scan(&visible); err != nil || !visible {
		t.Errorf("txid %d not visible in the proof %s (%v)", x, r.p.Proof, err)
	}
}

// TestFenceWaitPreparedTimeout: a prepared transaction from before the fence makes the wait time
// out naming its gid; committed, the wait succeeds. A fence lowered during a wait fails it.
func TestFenceWaitPreparedTimeout(t *testing.T) {
	db, owner := newFenceDB(t)
	ctx := context.Background()
	gid := "pgferry test " + db.Name
	mustExecConn(t, db.Conn(t, db.Writer), fmt.Sprintf("BEGIN; INSERT INTO public.items VALUES (70); PREPARE TRANSACTION %s", ident.Literal(gid)))
	t.Cleanup(func() { db.Cluster.Exec(context.Background(), db.Name, "ROLLBACK PREPARED "+ident.Literal(gid)) })
	f := fenceUp(t, owner)
	var progress syncBuffer
	_, err := FenceWait(ctx, owner, FenceWaitOptions{Position: f.Position, Timeout: time.Second, Progress: &progress})
	var te *FenceTimeoutError
	if !errors.As(err, &te) || len(te.Blockers) != 1 || te.Blockers[0].GID != gid || te.Blockers[0].Owner != db.Writer {
		t.Fatalf("wait: %v (%+v), want a timeout naming %q", err, te, gid)
	}
	if !strings.Contains(err.Error(), ident.Literal(gid)) || !strings.Contains(progress.String(), "prepared transaction gid "+ident.Literal(gid)) {
		t.Errorf("the gid is missing from the error %q or the report:\n%s", err, progress.String())
	}
	db.Exec(t, "COMMIT PREPARED "+ident.Literal(gid))
	if _, err := FenceWait(ctx, owner, FenceWaitOptions{Position: f.Position, Timeout: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	// lowered during a wait: nothing is proven
	if _, err := FenceDown(ctx, owner, ""); err != nil {
		t.Fatal(err)
	}
	mustExecConn(t, db.Conn(t, db.Writer), "BEGIN; INSERT INTO public.items VALUES (71); PREPARE TRANSACTION "+ident.Literal(gid))
	f = fenceUp(t, owner)
	lowerer := db.Conn(t, db.Owner)
	go func() { time.Sleep(500 * time.Millisecond); FenceDown(ctx, lowerer, "") }()
	_, err = FenceWait(ctx, owner, FenceWaitOptions{Position: f.Position, Timeout: 30 * time.Second})
	if le := (*FenceLoweredError)(nil); !errors.As(err, &le) {
		t.Fatalf("wait with the fence lowered: %v, want a FenceLoweredError", err)
	}
}

// TestFenceUpgradesOldInstall: an install made before the fence (functions without the check, no
// fence sequence) refuses the fence; re-running Install upgrades it in place, keeping the
// triggers and the delta rows.
func TestFenceUpgradesOldInstall(t *testing.T) {
	db, owner := newFenceDB(t)
	ctx := context.Background()
	mustExecConn(t, owner, fmt.Sprintf(`DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT p.oid::regprocedure AS f, p.prosrc FROM pg_proc p WHERE p.pronamespace = 'pgferry'::regnamespace AND p.prorettype = 'trigger'::regtype LOOP
    EXECUTE format('CREATE OR REPLACE FUNCTION %%s RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %%L', r.f, replace(r.prosrc, %s, ''));
  END LOOP; END $$`, ident.Literal(FenceCheckSQL(DefaultSchema))))
	_, err := FenceUp(ctx, owner, "")
	var nr *FenceNotReadyError
	if !errors.As(err, &nr) || len(nr.State.Unfenced) != 6 { // _i _u _d _k of items, f_ of ev, capture_truncate
		t.Errorf("fence up on unfenced functions: %v, want a refusal listing them", err)
	}
	mustExecConn(t, owner, "DROP SEQUENCE pgferry.fence; INSERT INTO public.items VALUES (80)")
	if st, err := GetFenceState(ctx, owner, ""); err != nil || !strings.Contains(st.Problem, "predates the write fence") {
		t.Fatalf("state without the fence sequence: %+v, %v", st, err)
	}
	triggers := func() string {
		return strings.Join(textRows(t, owner, "SELECT tgname || ' ' || oid FROM pg_trigger WHERE tgname LIKE 'pgferry%' ORDER BY 1"), ",")
	}
	trigBefore, deltaBefore := triggers(), deltaRows(t, owner, DefaultSchema)
	var progress syncBuffer
	res, err := Install(ctx, owner, InstallOptions{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Installed) != 0 || strings.Count(progress.String(), "trigger functions upgraded to check the write fence") != 2 {
		t.Errorf("re-install installed %v; progress:\n%s", res.Installed, progress.String())
	}
	if got := triggers(); got != trigBefore {
		t.Errorf("triggers changed by the upgrade:\n%s\nwant\n%s", got, trigBefore)
	}
	diffLines(t, "delta rows after the upgrade", deltaRows(t, owner, DefaultSchema), deltaBefore)
	fenceUp(t, owner)
	requireFenced(t, db.Conn(t, db.Writer), "INSERT INTO public.items VALUES (81)", "_i")
	requireFenced(t, db.Conn(t, db.Writer), "TRUNCATE public.ev", "capture_truncate")
}

// textRows returns the one text column of q's rows.
func textRows(t *testing.T, conn *pgx.Conn, q string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}
