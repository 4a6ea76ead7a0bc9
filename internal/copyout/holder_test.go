package copyout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/retry"
)

// installCapture installs capture of tables (patterns) into schema cap, as pgtrig install would
// (the fixture's pgferry schema holds a stand-in registry).
func installCapture(t *testing.T, url string, tables ...string) {
	t.Helper()
	conn := connect(t, url)
	if _, err := capture.Install(context.Background(), conn, capture.InstallOptions{Schema: "cap", Filter: catalog.Filter{Tables: tables}}); err != nil {
		t.Fatalf("install capture: %v", err)
	}
}

// holderPID returns the backend of the session holding the exported snapshot.
func holderPID(t *testing.T, url string) int {
	t.Helper()
	conn := connect(t, url)
	var pid int
	err := conn.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = 'pgferry-pgcopyout'
		AND datname = current_database() AND query LIKE '%pg_export_snapshot%' AND state LIKE 'idle in transaction%'`).Scan(&pid)
	if err != nil {
		t.Fatalf("find the snapshot's holder: %v", err)
	}
	return pid
}

// killHolder terminates the session holding the exported snapshot and waits until its backend
// has exited (its transaction ended, the snapshot file gone): pg_terminate_backend only signals
// it, and on a loaded host the backend can outlive any fixed sleep, every chunk begun meanwhile
// importing the old snapshot.
func killHolder(t *testing.T, url string) {
	t.Helper()
	pid := holderPID(t, url)
	terminate(t, url, pid)
	conn := connect(t, url)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var alive bool
		if err := conn.QueryRow(context.Background(), "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pid).Scan(&alive); err != nil {
			t.Errorf("wait for the holder's backend to exit: %v", err)
			return
		}
		if !alive {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the holder's backend %d still runs 20 s after pg_terminate_backend", pid)
			return
		}
	}
}

// TestLostSnapshotHolder: the connection holding the shared snapshot is killed mid-copy; the
// unfinished chunks go on under a new snapshot, each chunk records the snapshot it was read
// under (so catch-up starts at the oldest) and every row arrives once.
func TestLostSnapshotHolder(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, fixture(db))
	tables := []string{`"App Data"."Order Items"`, "public.parent", "public.ul", "public.ev"}
	installCapture(t, db.URL, tables...)
	cfg := baseConfig(db.URL)
	cfg.Jobs, cfg.CaptureSchema = 2, "cap"
	cfg.Retry = &retry.Policy{Attempts: 3, Base: 10 * time.Millisecond}
	cfg.Filter.Tables = tables
	var begun atomic.Int64
	killed := make(chan struct{})
	testHook = func(point string, conn *pgx.Conn, j *job) {
		if point != "begin" {
			return
		}
		switch n := begun.Add(1); {
		case n == 2:
			defer close(killed)
			db.Exec(t, "SELECT txid_current()") // a transaction since: the next snapshot differs
			killHolder(t, db.URL)
		case n > 2:
			// A chunk begun during the kill imported the old snapshot (valid: it is held by its
			// importer now); it waits, so the other worker cannot take every chunk left before
			// the holder is gone and leave none to begin after.
			<-killed
		}
	}
	defer func() { testHook = nil }()
	c, stderr, err := runCopy(t, cfg)
	if err != nil {
		t.Fatalf("copy that lost its snapshot holder: %v\n%s", err, stderr)
	}
	if n := strings.Count(stderr, "lost the connection holding the shared snapshot"); n != 1 {
		t.Errorf("want one line about the lost holder, got %d:\n%s", n, stderr)
	}
	snaps := map[string]int{}
	for _, byChunk := range c.chunks {
		for _, s := range byChunk {
			snaps[s.Snapshot]++
		}
	}
	t.Logf("chunks by snapshot: %v", snaps)
	if len(snaps) != 2 {
		t.Errorf("chunks were read under %d snapshots, want 2 (the lost one and its successor): %v", len(snaps), snaps)
	}
	if _, ok := snaps[c.h.Position]; !ok {
		t.Errorf("no chunk carries the header's position %s: %v", c.h.Position, snaps)
	}
	conn := connect(t, db.URL)
	for _, tb := range c.h.Tables {
		if strings.Join(c.rows[tb.Name], "\n") != strings.Join(sourceRows(t, conn, tb.Name, tb.Columns), "\n") {
			t.Errorf("%s differs after the snapshot was renewed", tb.Name)
		}
	}
}

// TestLostSnapshotHolderCtid: a table split by ctid ranges cannot be finished under a second
// snapshot: the copy stops and says to re-run with --target (which copies that table again whole).
func TestLostSnapshotHolderCtid(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, fixture(db))
	if heapSplit(db) == "" {
		t.Skip("no ctid ranges before PostgreSQL 14")
	}
	installCapture(t, db.URL, "public.heap")
	cfg := baseConfig(db.URL)
	cfg.Jobs, cfg.CaptureSchema = 1, "cap"
	cfg.Filter.Tables = []string{"public.heap"}
	var begun atomic.Int64
	testHook = func(point string, conn *pgx.Conn, j *job) {
		if point == "begin" && begun.Add(1) == 2 {
			killHolder(t, db.URL)
		}
	}
	defer func() { testHook = nil }()
	_, stderr, err := runCopy(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "is split by ctid ranges and part of it was read under the lost snapshot") {
		t.Fatalf("err = %v\n%s", err, stderr)
	}
}

// TestNoTableLockOutlivesChunk: while a chunk of one table is being read, no pgcopyout session
// holds a lock on any other application table, so the application's ALTER TABLE on one goes
// through at once (a short lock_timeout does not expire). The table altered is one the planner
// sampled (it is split), which the snapshot's holder used to keep locked.
func TestNoTableLockOutlivesChunk(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, fixture(db))
	// no histogram: the planner samples the table (a query on it, which locks it)
	db.Exec(t, `CREATE TABLE sampled(id bigint PRIMARY KEY, pad text);
ALTER TABLE sampled ALTER COLUMN id SET STATISTICS 0;
INSERT INTO sampled SELECT i, repeat('s', 60) FROM generate_series(1, 5000) i;
ANALYZE sampled;`)
	installCapture(t, db.URL, "public.sampled", "public.ul")
	cfg := baseConfig(db.URL)
	cfg.Jobs, cfg.SplitBy, cfg.CaptureSchema = 1, "key", "cap"
	cfg.Filter.Tables = []string{"public.sampled", "public.ul"}
	var checked atomic.Bool
	testHook = func(point string, conn *pgx.Conn, j *job) {
		if point != "begin" || j.tp.Key() != "public.ul" || !checked.CompareAndSwap(false, true) {
			return
		}
		c := connect(t, db.URL)
		var locks string
		c.QueryRow(context.Background(), `SELECT coalesce(string_agg(l.relation::regclass::text || ' by ' || a.pid, ', '), '')
			FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid JOIN pg_class r ON r.oid = l.relation
			WHERE a.application_name = 'pgferry-pgcopyout' AND a.pid <> $1 AND r.relnamespace NOT IN
			  (SELECT oid FROM pg_namespace WHERE nspname IN ('pg_catalog', 'information_schema', 'cap'))`, conn.PgConn().PID()).Scan(&locks)
		if locks != "" {
			t.Errorf("pgcopyout sessions other than the chunk's hold table locks: %s", locks)
		}
		start := time.Now()
		if _, err := c.Exec(context.Background(), "SET lock_timeout = '500ms'; ALTER TABLE public.sampled ADD COLUMN added int"); err != nil {
			t.Errorf("ALTER TABLE on a table not being copied, during the copy: %v", err)
		}
		t.Logf("ALTER TABLE during the copy took %s", time.Since(start).Round(time.Millisecond))
	}
	defer func() { testHook = nil }()
	if _, stderr, err := runCopy(t, cfg); err != nil {
		t.Fatalf("copy: %v\n%s", err, stderr)
	}
	if !checked.Load() {
		t.Fatal("the check never ran")
	}
}

// TestRotatedCredentialsStopCopy: when the role may no longer log in (a restart rotated the
// credentials), a worker's reconnect is refused and the copy stops at once, without the retries a
// lost connection gets, saying to re-run with the new URL.
func TestRotatedCredentialsStopCopy(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, fixture(db))
	installCapture(t, db.URL, `"App Data"."Order Items"`)
	role := "rotated_" + db.Name
	db.Exec(t, fmt.Sprintf(`CREATE ROLE %[1]q LOGIN; GRANT USAGE ON SCHEMA "App Data", cap TO %[1]q;
GRANT SELECT ON ALL TABLES IN SCHEMA "App Data", cap TO %[1]q`, role))
	t.Cleanup(func() {
		db.Cluster.Exec(context.Background(), db.Name, fmt.Sprintf(`DROP OWNED BY %[1]q; DROP ROLE %[1]q`, role))
	})
	cfg := baseConfig(db.URLAs(role))
	cfg.Jobs, cfg.CaptureSchema = 1, "cap"
	cfg.Filter.Tables = []string{`"App Data"."Order Items"`}
	cfg.Retry = &retry.Policy{Attempts: 5, Base: 500 * time.Millisecond}
	var begun atomic.Int64
	testHook = func(point string, conn *pgx.Conn, j *job) {
		if point == "begin" && begun.Add(1) == 2 {
			db.Exec(t, fmt.Sprintf(`ALTER ROLE %q NOLOGIN`, role))
			terminate(t, db.URL, int(conn.PgConn().PID()))
		}
	}
	defer func() { testHook = nil }()
	start := time.Now()
	_, stderr, err := runCopy(t, cfg)
	took := time.Since(start)
	var ee *cliutil.ExitError
	if err == nil || !errors.As(err, &ee) || ee.Code != cliutil.ExitUsage || !strings.Contains(ee.Hint, "re-run with the new URL in --source") {
		t.Fatalf("want exit 2 and a hint to re-run with the new URL, got %v (%#v)\n%s", err, ee, stderr)
	}
	if strings.Count(stderr, "retrying") > 1 || took > 5*time.Second {
		t.Errorf("the refused login was retried (%s):\n%s", took.Round(time.Millisecond), stderr)
	}
	t.Logf("stopped %s after the credentials were refused: %v", took.Round(time.Millisecond), err)
}
