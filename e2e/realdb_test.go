package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestRealDatabase migrates a database built from what real applications hold, all at once
// (realSchema: keyless tables small and big, duplicates, FORCE ROW LEVEL SECURITY, reg*
// columns, materialized views over partitions and over each other, an INCLUDE key, 1,600
// columns, hostile names, many types and edge values, extensions, large objects once pgferry
// moves them), with tiny statement, lock, idle and transaction timeouts set by ALTER ROLE and
// ALTER DATABASE on both sides for the roles pgferry runs as, both of them non-superusers that
// own their database (as on Heroku). migrate.sh and cutover.sh run while an application role,
// which the policy shows one tenant only, writes to every kind of table. Then every table and
// materialized view holds the same rows on both sides (keyless ones as multisets), every table
// on the target was analyzed, sequences are not behind, and pgverify exits 0.
func TestRealDatabase(t *testing.T) {
	requireTools(t)
	t.Parallel()
	started := time.Now()
	r := newRealDB(t)
	w := r.startWriter(t)
	out := r.m.script(t, 0, "migrate.sh")
	if !strings.Contains(out, "ready for cutover") {
		t.Fatal("migrate.sh did not report it was ready for cutover")
	}
	before := w.ok.Load()
	time.Sleep(2 * time.Second) // the follower catches up under the writer
	if w.ok.Load() == before {
		t.Fatalf("the writer committed nothing during the live phase (%d errors, last: %v)", w.errs.Load(), w.lastErr())
	}
	t.Logf("writer before the cutover: %d transactions committed, %d failed (last: %v)", w.ok.Load(), w.errs.Load(), w.lastErr())
	cut := r.m.script(t, 0, "cutover.sh", "--app-role", r.web, "--app-role", r.app)
	w.stop()
	t.Logf("writer: %d transactions committed, %d refused or failed (last: %v)", w.ok.Load(), w.errs.Load(), w.lastErr())
	if !strings.Contains(cut, "refresh: ") {
		t.Errorf("cutover.sh did not refresh the materialized views")
	}
	r.check(t)
	t.Logf("TestRealDatabase: %s in all", time.Since(started).Round(time.Millisecond))
}

// realDB is TestRealDatabase's source and target.
type realDB struct {
	m                  *migration
	srcMajor, dstMajor int
	srcDB, dstDB       string
	app, web, mig      string // the source's owner role, the application's role, the target's owner role
	srcCheck, dstCheck string // superuser URLs that override the timeouts, for the test's own checks
	lobs               bool   // large objects are part of the database (pgdelta lo-sync exists)
}

// newRealDB builds the roles, the schema and its data, and the timeouts.
func newRealDB(t *testing.T) *realDB {
	t.Helper()
	m := newEmptyMigration(t, true)
	cs, cd := pgtest.Shared(t, "source"), pgtest.Shared(t, "target")
	r := &realDB{m: m, srcMajor: cs.Major(), dstMajor: cd.Major()}
	r.srcDB = queryString(t, m.srcSuper, "SELECT current_database()")
	r.dstDB = queryString(t, m.dstSuper, "SELECT current_database()")
	r.app, r.web, r.mig = "app_"+r.srcDB, "web_"+r.srcDB, "migrator_"+r.dstDB
	r.srcCheck, r.dstCheck = noTimeouts(m.srcSuper, r.srcMajor), noTimeouts(m.dstSuper, r.dstMajor)
	t.Cleanup(func() {
		// the application role holds grants in the databases: drop them first
		cs.DropDB(r.srcDB)
		cd.DropDB(r.dstDB)
		execQuiet(cs.URL("postgres"), "DROP ROLE IF EXISTS "+qi(r.web))
		execQuiet(cd.URL("postgres"), "DROP ROLE IF EXISTS "+qi(r.web))
	})
	// BYPASSRLS: without it the preflight refuses the FORCEd table (TestMigrateRealObjects).
	// pg_signal_backend (RDS's admin has it; on Heroku the application shares the owner's role):
	// the freeze ends the application's sessions, which could otherwise go on calling nextval.
	mustExec(t, cs.URL("postgres"), fmt.Sprintf("CREATE ROLE %[1]s LOGIN; ALTER ROLE %[2]s BYPASSRLS; GRANT pg_signal_backend TO %[2]s", qi(r.web), qi(r.app)))
	exts := r.extensions(t)
	start := time.Now()
	execShort(t, m.src, realSchema(r.srcMajor, exts)+realGrants(r.web))
	if exts["pgcrypto"] {
		mustExec(t, m.src, `CREATE VIEW public.doc_digests AS SELECT id, encode(public.digest(body, 'sha256'), 'hex') AS h FROM public.rls_docs`)
	}
	if r.srcMajor < 12 {
		t.Logf("source PostgreSQL %d: no generated column in typezoo (they start at 12)", r.srcMajor)
	}
	r.lobs = loSyncExists()
	if r.lobs {
		mustExec(t, m.src, realLargeObjects)
	}
	t.Logf("built the source database in %s", time.Since(start).Round(time.Millisecond))
	r.setTimeouts(t)
	return r
}

// execShort is mustExec with the statement left out of the message (the schema is long).
func execShort(t *testing.T, u, sql string) {
	t.Helper()
	if err := execQuiet(u, sql); err != nil {
		t.Fatalf("%s...: %v", tail(sql, 300), err)
	}
}

// extensions creates, as superuser on the source, the extensions both servers offer among
// citext and pgcrypto, and says which are missing.
func (r *realDB) extensions(t *testing.T) map[string]bool {
	t.Helper()
	exts := map[string]bool{}
	for _, e := range []string{"citext", "pgcrypto"} {
		q := fmt.Sprintf("SELECT count(*) FROM pg_available_extensions WHERE name = '%s'", e)
		if queryInt(t, r.m.srcSuper, q) == 0 || queryInt(t, r.m.dstSuper, q) == 0 {
			t.Logf("extension %s is not available on both servers: its objects are left out", e)
			continue
		}
		mustExec(t, r.m.srcSuper, "CREATE EXTENSION "+e+" WITH SCHEMA public")
		exts[e] = true
	}
	return exts
}

// timeoutSettings are tiny values of every timeout the server knows, for ALTER ROLE/DATABASE.
func timeoutSettings(major int) []string {
	s := []string{"statement_timeout = '100ms'", "lock_timeout = '50ms'", "idle_in_transaction_session_timeout = '100ms'"}
	if major >= 14 {
		s = append(s, "idle_session_timeout = '150ms'")
	}
	if major >= 17 {
		s = append(s, "transaction_timeout = '200ms'")
	}
	return s
}

// setTimeouts sets the tiny timeouts for the roles pgferry runs as and for both databases.
func (r *realDB) setTimeouts(t *testing.T) {
	t.Helper()
	for _, side := range []struct {
		super, role, db string
		major           int
	}{{r.srcCheck, r.app, r.srcDB, r.srcMajor}, {r.dstCheck, r.mig, r.dstDB, r.dstMajor}} {
		var sql []string
		for _, s := range timeoutSettings(side.major) {
			sql = append(sql, fmt.Sprintf("ALTER ROLE %s SET %s", qi(side.role), s), fmt.Sprintf("ALTER DATABASE %s SET %s", qi(side.db), s))
		}
		mustExec(t, side.super, strings.Join(sql, "; "))
	}
}

// noTimeouts adds startup options to url that override every timeout a role or database sets.
func noTimeouts(u string, major int) string {
	opts := "-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0"
	if major >= 14 {
		opts += " -c idle_session_timeout=0"
	}
	if major >= 17 {
		opts += " -c transaction_timeout=0"
	}
	return u + "&options=" + escapeOpt(opts)
}

// escapeOpt escapes a URL parameter's value, spaces as %20 (pgx reads no '+' as a space).
func escapeOpt(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// loSyncExists reports whether the tools move large objects yet: 'pgdelta lo-sync' exists and
// the scripts run it.
func loSyncExists() bool {
	out, err := exec.Command("pgdelta", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lo-sync") {
		return false
	}
	for _, s := range []string{"migrate.sh", "cutover.sh"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "scripts", s))
		if err != nil || !strings.Contains(string(b), "lo-sync") {
			return false
		}
	}
	return true
}

// realLargeObjects: a table referencing large objects by oid, some shared with no row.
const realLargeObjects = `
CREATE TABLE public.attachments (id int PRIMARY KEY, content oid);
INSERT INTO public.attachments SELECT g, lo_from_bytea(0, convert_to(repeat('attachment ' || g || E'\n', g), 'UTF8')) FROM generate_series(1, 30) g;
SELECT lo_from_bytea(0, '\x00ff00ff');
`

// realWriter is the application writing to the source during the live phase.
type realWriter struct {
	ok, errs atomic.Int64
	mu       sync.Mutex
	last     error
	done     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

func (w *realWriter) lastErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *realWriter) stop() {
	w.stopOnce.Do(func() { close(w.done) })
	w.wg.Wait()
}

// startWriter runs two sessions of the application role (the policy shows it tenant 1 of
// rls_docs) and, with large objects, one of the owner, until the test stops it.
func (r *realDB) startWriter(t *testing.T) *realWriter {
	t.Helper()
	w := &realWriter{done: make(chan struct{})}
	var next atomic.Int64
	next.Store(1_000_000)
	webURL := noTimeouts(pgtest.Shared(t, "source").URLAs(r.srcDB, r.web), r.srcMajor)
	for i := range 2 {
		w.wg.Add(1)
		go w.run(webURL, uint64(i), webOps(&next))
	}
	if r.lobs {
		w.wg.Add(1)
		go w.run(noTimeouts(r.m.src, r.srcMajor), 9, loOps(&next))
	}
	t.Cleanup(w.stop)
	return w
}

// run executes random transactions from ops until stopped, reconnecting when the session ends.
func (w *realWriter) run(u string, seed uint64, ops []func(*rand.Rand) string) {
	defer w.wg.Done()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(13, seed))
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(ctx)
		}
	}()
	for {
		select {
		case <-w.done:
			return
		case <-time.After(30 * time.Millisecond): // about 30 transactions a second a session
		}
		if conn == nil || conn.IsClosed() {
			c, err := pgx.Connect(ctx, u)
			if err != nil {
				w.fail(err)
				time.Sleep(50 * time.Millisecond)
				continue
			}
			conn = c
		}
		// one implicit transaction per string (simple protocol)
		if _, err := conn.Exec(ctx, ops[rng.IntN(len(ops))](rng)); err != nil {
			w.fail(err)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) {
				conn.Close(ctx)
				conn = nil
			}
			continue
		}
		w.ok.Add(1)
	}
}

func (w *realWriter) fail(err error) {
	w.errs.Add(1)
	w.mu.Lock()
	w.last = err
	w.mu.Unlock()
}

// webOps are the application's transactions: every kind of table, keyless and wide included.
func webOps(next *atomic.Int64) []func(*rand.Rand) string {
	long := "public." + qi(longTable)
	return []func(*rand.Rand) string{
		func(r *rand.Rand) string {
			return fmt.Sprintf(`INSERT INTO public.klog_small SELECT * FROM public.klog_small WHERE seq = %[1]d LIMIT 1;
UPDATE public.klog_small SET v = v + 1 WHERE ctid = (SELECT ctid FROM public.klog_small WHERE seq = %[1]d + 1 LIMIT 1);
DELETE FROM public.klog_small WHERE ctid = (SELECT ctid FROM public.klog_small WHERE seq = %[1]d + 2 LIMIT 1);
INSERT INTO public.klog_small VALUES (NULL, NULL, NULL)`, r.IntN(320))
		},
		func(r *rand.Rand) string {
			return fmt.Sprintf(`INSERT INTO public.klog_big (g, note) VALUES (%[1]d, 'live');
UPDATE public.klog_big SET note = note || '+' WHERE ctid = (SELECT ctid FROM public.klog_big WHERE g = %[2]d LIMIT 1);
DELETE FROM public.klog_big WHERE ctid = (SELECT ctid FROM public.klog_big WHERE g = %[3]d LIMIT 1)`, r.IntN(200000), r.IntN(200000), r.IntN(200000))
		},
		func(r *rand.Rand) string {
			return fmt.Sprintf(`INSERT INTO public.dups VALUES (%[1]d, 'dup %[1]d'), (%[1]d, 'dup %[1]d'), (NULL, NULL);
DELETE FROM public.dups WHERE ctid = (SELECT ctid FROM public.dups WHERE a = %[2]d LIMIT 1)`, r.IntN(12), r.IntN(12))
		},
		func(r *rand.Rand) string {
			return fmt.Sprintf(`INSERT INTO public.rls_docs VALUES (%[1]d, 2, 'hidden live');
UPDATE public.rls_docs SET body = body || '+' WHERE id = %[2]d`, next.Add(1), 1+r.IntN(600))
		},
		func(r *rand.Rand) string {
			return fmt.Sprintf(`INSERT INTO public.measurements VALUES (%[1]d, date '2025-06-01' + %[2]d, %[1]d * 0.5);
INSERT INTO public.measurements_2026 VALUES (%[3]d, date '2026-03-01', 1);
UPDATE public.measurements SET at = at + 200 WHERE id = %[4]d;
DELETE FROM public.measurements WHERE id = %[5]d`, next.Add(1), r.IntN(700), next.Add(1), 1+r.IntN(5000), 1+r.IntN(5000))
		},
		func(r *rand.Rand) string {
			return fmt.Sprintf(`UPDATE public.wide SET c800 = c800 + 1, c1599 = %[1]d WHERE id = %[2]d;
INSERT INTO public.wide (id, c1, c1598) VALUES (%[3]d, 1, 2);
DELETE FROM public.wide WHERE id = %[4]d`, r.IntN(1000), 1+r.IntN(40), next.Add(1), 1+r.IntN(60))
		},
		func(r *rand.Rand) string {
			return fmt.Sprintf(`UPDATE "My ""Schema"""."select" SET "k" = "k" || '+', "txid" = "txid" + 1, "quo""te" = 'q"+', %[4]s = 'ü+' WHERE "b" = %[1]d;
INSERT INTO "My ""Schema"""."select" ("b", "op", "ünï", "t") VALUES (%[2]d, 'live', 'ü', E'tab\t');
INSERT INTO %[5]s VALUES (%[3]d %% 100, %[3]d, 'live', NULL, NULL, 'w', 1);
UPDATE %[5]s SET "w" = "w" || '+' WHERE ctid = (SELECT ctid FROM %[5]s WHERE "i" = %[1]d %% 100 LIMIT 1)`,
				1+r.IntN(400), next.Add(1), next.Add(1), qi(longColumn), long)
		},
		func(r *rand.Rand) string {
			return fmt.Sprintf(`UPDATE public.incl SET payload = payload || '+', extra = extra + 1 WHERE a = %[1]d;
INSERT INTO public.incl VALUES (%[2]d, 'live', 'p', 0);
DELETE FROM public.incl WHERE a = %[3]d`, 1+r.IntN(2000), next.Add(1), 1+r.IntN(2000))
		},
		func(r *rand.Rand) string {
			return fmt.Sprintf(`INSERT INTO public.typezoo (arr, j, jb, num, f8, f4, by, tstz, md) VALUES ('{%[1]d}', '{"live": true}', '[1]', 'NaN', '-0', 'Infinity', '\x00', now(), 'sad');
UPDATE public.typezoo SET num = num + 1, iv = iv + interval '1 second', tarr = tarr || 'x'::text WHERE id = %[2]d;
UPDATE public.objrefs SET rel = 'public.dups', fn = 'int4mi', rels = rels || 'public.wide'::regclass WHERE id = 2`, r.IntN(100), 1+r.IntN(8))
		},
	}
}

// loOps change large objects as their owner: create, overwrite part of one, unlink one.
func loOps(next *atomic.Int64) []func(*rand.Rand) string {
	return []func(*rand.Rand) string{
		func(r *rand.Rand) string {
			return fmt.Sprintf(`INSERT INTO public.attachments VALUES (%d, lo_from_bytea(0, convert_to('live %d', 'UTF8')))`, next.Add(1), r.IntN(1000))
		},
		func(r *rand.Rand) string {
			return fmt.Sprintf(`SELECT lo_put(content, %d, '\x4142') FROM public.attachments WHERE id = %d`, r.IntN(20), 1+r.IntN(30))
		},
		func(r *rand.Rand) string {
			id := 1 + r.IntN(30)
			return fmt.Sprintf(`SELECT lo_unlink(content) FROM public.attachments WHERE id = %[1]d; DELETE FROM public.attachments WHERE id = %[1]d`, id)
		},
	}
}

// check asserts what the migration promises on the target after the cutover.
func (r *realDB) check(t *testing.T) {
	t.Helper()
	pgtest.RequireSameData(t, r.srcCheck, r.dstCheck)
	// The source's views are refreshed here, after the freeze, so both sides are computed from
	// the same final data; the target's were refreshed by the cutover.
	mustExec(t, r.srcCheck+escapeOpt(" -c default_transaction_read_only=off"),
		"REFRESH MATERIALIZED VIEW public.mv_part_daily; REFRESH MATERIALIZED VIEW public.mv_dep")
	for _, mv := range []string{"public.mv_part_daily", "public.mv_dep"} {
		pgtest.RequireSameTable(t, r.srcCheck, r.dstCheck, mv)
	}
	for q, want := range map[string]int64{
		`SELECT count(*) FROM pg_matviews WHERE schemaname = 'public' AND NOT ispopulated`:                   0,
		`SELECT count(*) FROM public.rls_docs WHERE body = 'hidden live'`:                                    -1, // > 0
		`SELECT count(*) FROM pg_class WHERE oid = 'public.rls_docs'::regclass AND relforcerowsecurity`:      1,
		`SELECT count(*) FROM pg_policies WHERE tablename = 'rls_docs'`:                                      1,
		`SELECT count(*) FROM public.klog_big WHERE note = 'live'`:                                           -1,
		`SELECT count(*) FROM public.wide WHERE id >= 1000000`:                                               -1,
		`SELECT count(*) FROM public.objrefs WHERE rel = 'public.dups'::regclass AND fn = 'int4mi'::regproc`: 1,
	} {
		got := queryInt(t, r.dstCheck, q)
		if (want < 0 && got <= 0) || (want >= 0 && got != want) {
			t.Errorf("target: %s = %d, want %s", q, got, map[bool]string{true: "> 0", false: fmt.Sprint(want)}[want < 0])
		}
	}
	// ANALYZE ran on every table: last_analyze is set only by an ANALYZE (not by autovacuum).
	if n := queryInt(t, r.dstCheck, `SELECT count(*) FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
		WHERE c.relkind = 'r' AND s.schemaname <> 'pgferry' AND s.last_analyze IS NULL`); n != 0 {
		t.Errorf("%d tables on the target were never analyzed: %s", n, queryString(t, r.dstCheck, `SELECT string_agg(s.relid::regclass::text, ', ')
			FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE c.relkind = 'r' AND s.schemaname <> 'pgferry' AND s.last_analyze IS NULL`))
	}
	r.checkSequences(t)
	verify := exec.Command("pgverify", "--source", r.m.srcSuper, "--target", r.m.dstSuper, "--mode", "hash")
	if out, err := verify.CombinedOutput(); err != nil {
		t.Errorf("pgverify --mode hash after cutover: %v\n%s", err, out)
	}
	t.Run("large objects", func(t *testing.T) {
		if !r.lobs {
			t.Skip("waiting for 'pgdelta lo-sync' (internal/lobj, internal/delta/cmd_lo.go): large objects are not moved yet, so the test database holds none")
		}
		q := `SELECT m.oid::text || ' ' || pg_get_userbyid(m.lomowner) || ' ' || md5(lo_get(m.oid)) FROM pg_largeobject_metadata m ORDER BY m.oid`
		a, b := queryLines(t, r.srcCheck, q), queryLines(t, r.dstCheck, q)
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Errorf("large objects differ:\nsource: %v\ntarget: %v", a, b)
		}
	})
}

// checkSequences fails unless every sequence of the target is at or past the source's.
func (r *realDB) checkSequences(t *testing.T) {
	t.Helper()
	q := `SELECT format('%I.%I', schemaname, sequencename) || E'\t' || coalesce(last_value, 0) FROM pg_sequences WHERE schemaname <> 'pgferry' ORDER BY 1`
	src, dst := queryLines(t, r.srcCheck, q), queryLines(t, r.dstCheck, q)
	if len(src) != len(dst) {
		t.Fatalf("sequences: source %v, target %v", src, dst)
	}
	for i := range src {
		sn, sv, _ := strings.Cut(src[i], "\t")
		dn, dv, _ := strings.Cut(dst[i], "\t")
		if s, d := atoi(sv), atoi(dv); sn != dn || d < s {
			t.Errorf("sequence %s: source at %s, target %s at %s", sn, sv, dn, dv)
		}
	}
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// queryLines returns the first column of every row of q as text.
func queryLines(t *testing.T, u, q string) []string {
	t.Helper()
	ctx, conn, err := connectQuiet(u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}
