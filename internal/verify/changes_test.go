package verify

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/delta"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/state"
)

const changesDDL = `CREATE TABLE t(id int PRIMARY KEY, v text); CREATE TABLE u(id int PRIMARY KEY, v text);
CREATE TABLE n(a int, b text); CREATE TABLE late(id int PRIMARY KEY);`

const changesSeed = `INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g;
INSERT INTO u SELECT g, 'u' || g FROM generate_series(1, 10) g;
INSERT INTO n SELECT g % 3, 'n' FROM generate_series(1, 10) g; INSERT INTO late VALUES (1), (2);`

// changesSetup migrates the tables as migrate.sh does: capture, copy, an apply position; it
// returns a function that runs pgdelta sync (pruning after every batch) until caught up.
func changesSetup(t *testing.T, src, dst *pgtest.DB) func() {
	ctx := context.Background()
	src.Exec(t, changesDDL)
	dst.Exec(t, changesDDL)
	conn := func(url string) *pgx.Conn {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(ctx) })
		return c
	}
	sc, dc := conn(src.URL), conn(dst.URL)
	if _, err := capture.Install(ctx, sc, capture.InstallOptions{Schema: "pgferry"}); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, changesSeed)
	dst.Exec(t, changesSeed) // the copy, at the position read next (nothing else writes)
	var pos string
	if err := sc.QueryRow(ctx, "SELECT txid_current_snapshot()::text").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	if err := state.EnsureApply(ctx, dc, "pgferry"); err != nil {
		t.Fatal(err)
	}
	if err := state.WriteApply(ctx, dc, "pgferry", pos, 0, time.Time{}, 0); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		_, err := delta.Sync(ctx, delta.SyncOptions{
			ConnectSource: func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, src.URL) },
			ConnectTarget: func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, dst.URL) },
			CaptureSchema: "pgferry", StateSchema: "pgferry", Log: io.Discard, SourceURL: src.URL, TargetURL: dst.URL,
		})
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
}

// TestChangesSinceProof: a hash verify records proofs; after changes (applied by pgdelta, which
// prunes the delta tables behind the target), --mode changes checks only the changed keys and
// catches a corrupted target row among them, compares in full a table with no proof, one
// truncated after its proof and a keyless one that changed, and converges on the next runs.
func TestChangesSinceProof(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	sync := changesSetup(t, src, dst)
	cfg := Config{SourceURL: src.URL, TargetURL: dst.URL, StateSchema: "pgferry", CaptureSchema: "pgferry"}
	if code, rs, diag := run(t, cfg); code != 0 || !strings.Contains(diag, "recorded proofs at") {
		t.Fatalf("live verify: exit %d %+v\n%s", code, rs, diag)
	}
	dst.Exec(t, "DELETE FROM pgferry.verify_proofs WHERE table_name = 'public.late'") // never covered
	src.Exec(t, `UPDATE t SET v = 'new' WHERE id IN (7, 8); INSERT INTO t VALUES (101, 'x');
		TRUNCATE u; INSERT INTO u SELECT g, 'u' || g FROM generate_series(1, 10) g; INSERT INTO n VALUES (9, 'z')`)
	sync()
	dst.Exec(t, "UPDATE t SET v = 'wrong' WHERE id = 7") // corrupted after pgdelta applied it

	cfg.Mode = "changes"
	code, rs, diag := run(t, cfg)
	m := byTable(rs)
	r := m["public.t"]
	if code != 1 || r.Mode != "changes" || r.ChangedKeys == nil || *r.ChangedKeys != 3 || len(r.Diffs) != 1 || r.Diffs[0].Key["id"] != "7" {
		t.Fatalf("changes: exit %d, t %+v\n%s", code, r, diag)
	}
	for table, why := range map[string]string{"public.u": "truncated after the proof", "public.late": "no proof", "public.n": "no key and changed"} {
		if r := m[table]; r.Mode != "hash" || r.Status != StatusSame || !strings.Contains(r.Note, why) {
			t.Errorf("%s: want a full hash because %q, got %+v", table, why, r)
		}
	}
	if !strings.Contains(diag, "1 table(s) verified by the 3 key(s) captured since their proof, 3 by a full hash") {
		t.Errorf("summary line missing:\n%s", diag)
	}

	dst.Exec(t, "UPDATE t SET v = 'new' WHERE id = 7")
	// t's difference removed its proof: t is hashed in full now, and proven again.
	if code, rs, diag := run(t, cfg); code != 0 || !strings.Contains(byTable(rs)["public.t"].Note, "no proof") {
		t.Fatalf("after the repair: exit %d %+v\n%s", code, byTable(rs)["public.t"], diag)
	}
	code, rs, diag = run(t, cfg)
	if code != 0 || !strings.Contains(diag, "4 table(s) verified by the 0 key(s)") {
		t.Fatalf("converged: exit %d %+v\n%s", code, rs, diag)
	}
	for _, r := range rs {
		if len(r.Checks) == 0 || r.Checks[0].Name != "rows from statistics" {
			t.Errorf("%s: no statistics check: %+v", r.Table, r.Checks)
		}
	}
}

// TestProofDespitePendingChanges: a live verify that runs while the follower lags finds the keys
// changed since the last batch different; as each of them has a change captured after the proof
// position, the table's proof is recorded anyway, and the cutover's changes mode then compares
// exactly those keys. A difference in a key with no pending change (a corrupted row) still loses
// the proof.
func TestProofDespitePendingChanges(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	sync := changesSetup(t, src, dst)
	sync()
	src.Exec(t, `UPDATE t SET v = 'lag' WHERE id IN (3, 4); INSERT INTO t VALUES (102, 'y'); UPDATE u SET v = 'lag' WHERE id = 1`)
	dst.Exec(t, "UPDATE u SET v = 'corrupt' WHERE id = 2") // no change captured for u's key 2
	cfg := Config{SourceURL: src.URL, TargetURL: dst.URL, StateSchema: "pgferry", CaptureSchema: "pgferry"}
	code, rs, diag := run(t, cfg)
	m := byTable(rs)
	if code != 1 || m["public.t"].Status != StatusDiffer || m["public.u"].Status != StatusDiffer {
		t.Fatalf("live verify while lagging: exit %d %+v %+v\n%s", code, m["public.t"], m["public.u"], diag)
	}
	if !strings.Contains(diag, "1 of them differ only in keys with captured changes not applied yet") {
		t.Fatalf("no pending-changes proof reported:\n%s", diag)
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dst.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT table_name FROM pgferry.verify_proofs ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	proven, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(proven, ",") != "public.late,public.n,public.t" {
		t.Fatalf("proofs: %v, want late, n and t (u has a corrupted row)", proven)
	}
	sync()
	dst.Exec(t, "UPDATE u SET v = 'u2' WHERE id = 2")
	cfg.Mode = "changes"
	code, rs, diag = run(t, cfg)
	r := byTable(rs)["public.t"]
	if code != 0 || r.Mode != "changes" || r.ChangedKeys == nil || *r.ChangedKeys != 3 {
		t.Fatalf("changes after catching up: exit %d, t %+v\n%s", code, r, diag)
	}
	if r := byTable(rs)["public.u"]; r.Mode != "hash" || !strings.Contains(r.Note, "no proof") {
		t.Errorf("u: want a full hash for want of a proof, got %+v", r)
	}
}
