package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// tools are the binaries the migration scripts compose.
var tools = []string{"pgschema", "pgtrig", "pgcopyout", "pgcopyin", "pgdelta", "pgverify"}

// requireTools needs every tool the migration scripts compose.
func requireTools(t *testing.T) {
	t.Helper()
	needTools(t, tools...)
}

// sizeMB reads the sample database size for a test from PGFERRY_E2E_MB (default def).
func sizeMB(t *testing.T, def int) int {
	if v := os.Getenv("PGFERRY_E2E_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("PGFERRY_E2E_MB=%q: want a positive number of megabytes", v)
		}
		return n
	}
	return def
}

// migration is one source/target pair with the sample data loaded, as a script sees it.
type migration struct {
	src, dst           string // URLs the scripts use (the app role and the migrator role)
	srcSuper, dstSuper string // superuser URLs of the same databases, for checks
	stateDir           string
	env                []string
}

// newMigration creates a source and a target database, loads about mb MB of sample data into the
// source, and prepares the scripts' environment. With nonSuper the source data is owned by and
// migrated as a non-superuser role, and the target is written by another non-superuser that owns
// the target database (as on Heroku and RDS).
func newMigration(t *testing.T, mb int, nonSuper bool) *migration {
	t.Helper()
	m := newEmptyMigration(t, nonSuper)
	start := time.Now()
	m.script(t, 0, "demo-data/load.sh", "--mb", strconv.Itoa(mb))
	t.Logf("loaded %d MB of sample data in %s", mb, time.Since(start).Round(time.Millisecond))
	return m
}

// newEmptyMigration is newMigration without the sample data: the caller loads the source.
func newEmptyMigration(t *testing.T, nonSuper bool) *migration {
	t.Helper()
	ctx := context.Background()
	cs := pgtest.Shared(t, "source")
	cd := pgtest.Shared(t, "target")
	srcDB, err := cs.CreateDB(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	dstDB, err := cd.CreateDB(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	m := &migration{srcSuper: cs.URL(srcDB), dstSuper: cd.URL(dstDB), stateDir: filepath.Join(t.TempDir(), "state")}
	m.src, m.dst = m.srcSuper, m.dstSuper
	if nonSuper {
		app, mig := "app_"+srcDB, "migrator_"+dstDB
		mustExec(t, cs.URL("postgres"), fmt.Sprintf(`CREATE ROLE %q LOGIN; ALTER DATABASE %q OWNER TO %q`, app, srcDB, app))
		mustExec(t, cd.URL("postgres"), fmt.Sprintf(`CREATE ROLE %q LOGIN CREATEROLE; ALTER DATABASE %q OWNER TO %q`, mig, dstDB, mig))
		m.src, m.dst = cs.URLAs(srcDB, app), cd.URLAs(dstDB, mig)
		t.Cleanup(func() {
			cs.DropDB(srcDB)
			cd.DropDB(dstDB)
			// the target may have got the app role from 'pgschema roles'
			execQuiet(cd.URL("postgres"), fmt.Sprintf(`DROP ROLE IF EXISTS %q`, app))
			execQuiet(cd.URL("postgres"), fmt.Sprintf(`DROP ROLE IF EXISTS %q`, mig))
			execQuiet(cs.URL("postgres"), fmt.Sprintf(`DROP ROLE IF EXISTS %q`, app))
		})
	} else {
		t.Cleanup(func() { cs.DropDB(srcDB); cd.DropDB(dstDB) })
	}
	// the follower runs in its own session: stop it even when the test fails before the cutover
	t.Cleanup(func() {
		b, err := os.ReadFile(filepath.Join(m.stateDir, "sync.pid"))
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	})
	m.env = append(os.Environ(), "PGFERRY_SOURCE="+m.src, "PGFERRY_TARGET="+m.dst, "PGFERRY_STATE_DIR="+m.stateDir, "PGFERRY_JOBS=2",
		"PGFERRY_RECHECK=3") // the live verify's re-check of keys in flight under the writer
	return m
}

// command builds a script invocation in its own process group, so a test can kill it whole.
func (m *migration) command(script string, args ...string) *exec.Cmd {
	cmd := exec.Command("bash", append([]string{filepath.Join(repoRoot, "scripts", script)}, args...)...)
	cmd.Env = m.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// script runs a script to the end and fails the test unless it exits with want; returns its output.
func (m *migration) script(t *testing.T, want int, script string, args ...string) string {
	t.Helper()
	cmd := m.command(script, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	t.Logf("%s %s: exit %d in %s\n%s", script, strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond), out.String())
	if code != want {
		t.Fatalf("%s exited %d, want %d", script, code, want)
	}
	return out.String()
}

// writer is the demo's live workload running against the source.
type writer struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// alive reports whether the writer still runs.
func (w *writer) alive() bool {
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// startWriter runs the demo writer against the source until the test ends or the cutover stops it.
func (m *migration) startWriter(t *testing.T) *writer {
	t.Helper()
	cmd := m.command("demo-data/writer.sh", "--url", m.src, "--rate", "40", "--clients", "2")
	log, err := os.Create(filepath.Join(t.TempDir(), "writer.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &writer{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-w.done
		b, _ := os.ReadFile(log.Name())
		t.Logf("writer log:\n%s", tail(string(b), 1500))
	})
	time.Sleep(time.Second)
	if !w.alive() {
		t.Fatal("the writer did not start")
	}
	return w
}

// stoppedByFreeze fails the test unless the writer ends soon (the cutover's freeze ends it).
func (w *writer) stoppedByFreeze(t *testing.T) {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		t.Errorf("the writer still runs 30s after the cutover: the freeze did not stop writes")
	}
}

var downtimeRE = regexp.MustCompile(`write downtime: ([0-9.]+)s`)

// checkMigratedNoWriter asserts a finished cutover without a writer: downtime printed, pgverify
// clean, every table equal row for row.
func (m *migration) checkMigratedNoWriter(t *testing.T, cutoverOut string) {
	t.Helper()
	if downtimeRE.FindStringSubmatch(cutoverOut) == nil {
		t.Errorf("cutover did not print the write downtime")
	}
	verify := exec.Command("pgverify", "--source", m.srcSuper, "--target", m.dstSuper, "--mode", "hash")
	if out, err := verify.CombinedOutput(); err != nil {
		t.Errorf("pgverify after cutover: %v\n%s", err, out)
	}
	pgtest.RequireSameData(t, m.srcSuper, m.dstSuper)
}

// checkMigrated asserts what a finished cutover promises: downtime printed, pgverify clean, every
// table equal row for row, sequences not behind, and writes made after the copy present.
func (m *migration) checkMigrated(t *testing.T, cutoverOut string) {
	t.Helper()
	d := downtimeRE.FindStringSubmatch(cutoverOut)
	if d == nil {
		t.Errorf("cutover did not print the write downtime")
	} else {
		t.Logf("write downtime: %ss", d[1])
	}
	verify := exec.Command("pgverify", "--source", m.srcSuper, "--target", m.dstSuper, "--mode", "hash")
	if out, err := verify.CombinedOutput(); err != nil {
		t.Errorf("pgverify after cutover: %v\n%s", err, out)
	}
	pgtest.RequireSameData(t, m.srcSuper, m.dstSuper)
	// the writer's rows (July 2026 rentals, live events) made it, including ones after the copy
	for _, q := range []string{
		`SELECT count(*) FROM rental WHERE rental_date >= '2026-07-01'`,
		`SELECT count(*) FROM demo.events WHERE note = E'live\twriter'`,
		`SELECT count(*) FROM demo.kv WHERE k LIKE '%+'`,
	} {
		if n := queryInt(t, m.dstSuper, q); n == 0 {
			t.Errorf("target: %s = 0: the writer's changes are missing", q)
		}
	}
	copyDone, err := os.ReadFile(filepath.Join(m.stateDir, "done", "copy"))
	if err != nil {
		t.Fatalf("no copy marker: %v", err)
	}
	after := queryInt(t, m.dstSuper, fmt.Sprintf(`SELECT count(*) FROM demo.events WHERE created_at > '%s'`, strings.TrimSpace(string(copyDone))))
	if after == 0 {
		t.Errorf("no row written after the copy finished reached the target: the writer or the catch-up did not run")
	}
	t.Logf("%d events written after the copy finished were caught up", after)
	// sequences: the target's must not hand out values the source already used
	src := queryInt(t, m.srcSuper, `SELECT last_value FROM rental_rental_id_seq`)
	dst := queryInt(t, m.dstSuper, `SELECT last_value FROM rental_rental_id_seq`)
	if dst < src {
		t.Errorf("rental_rental_id_seq: target %d behind source %d", dst, src)
	}
	// foreign keys and user triggers exist on the target, validated
	if n := queryInt(t, m.dstSuper, `SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated AND connamespace = 'public'::regnamespace`); n < 10 {
		t.Errorf("target has %d validated foreign keys in public, want pagila's", n)
	}
	if n := queryInt(t, m.dstSuper, `SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgname = 'last_updated'`); n == 0 {
		t.Errorf("target has no last_updated triggers")
	}
	if n := queryInt(t, m.dstSuper, `SELECT count(*) FROM pg_matviews WHERE matviewname = 'rental_by_category' AND ispopulated`); n != 1 {
		t.Errorf("the cutover did not refresh rental_by_category on the target")
	}
	// every table that holds rows was analyzed before traffic arrives
	if n := queryInt(t, m.dstSuper, `SELECT count(*) FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
		WHERE c.relkind = 'r' AND s.schemaname NOT IN ('pgferry') AND s.last_analyze IS NULL AND s.last_autoanalyze IS NULL`); n != 0 {
		t.Errorf("%d tables on the target were never analyzed", n)
	}
}

func queryInt(t *testing.T, url, q string) int64 { return pgtest.QueryInt(t, url, q) }

func mustExec(t *testing.T, url, sql string) {
	t.Helper()
	if err := execQuiet(url, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func execQuiet(url, sql string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func connectQuiet(url string) (context.Context, *pgx.Conn, error) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	return ctx, conn, err
}

func queryString(t *testing.T, url, q string) string {
	t.Helper()
	ctx, conn, err := connectQuiet(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}
