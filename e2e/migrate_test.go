package e2e

import (
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

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestMigrateLive runs the demo's path: sample data (PGFERRY_E2E_MB; default 150 MB under CI=true,
// 50 MB otherwise), a writer running throughout, migrate.sh, cutover.sh; then pgverify is clean
// and every table is equal.
func TestMigrateLive(t *testing.T) {
	requireTools(t)
	t.Parallel()
	def := 50
	if pgtest.Required() {
		def = 150
	}
	m := newMigration(t, sizeMB(t, def), false)
	w := m.startWriter(t)
	out := m.script(t, 0, "migrate.sh")
	if !strings.Contains(out, "ready for cutover") {
		t.Fatalf("migrate.sh did not report it was ready for cutover")
	}
	time.Sleep(3 * time.Second) // the follower catches up under load
	if !w.alive() {
		t.Fatal("the writer stopped before the cutover")
	}
	cut := m.script(t, 0, "cutover.sh")
	w.stoppedByFreeze(t)
	m.checkMigrated(t, cut)
	// migrate.sh's live verify recorded proofs: the cutover verified by the changes since.
	if v := changesRE.FindStringSubmatch(cut); v == nil || v[1] == "0" {
		t.Errorf("cutover did not say it verified tables by their changes since the live proofs (%q)", v)
	}
	if !strings.Contains(cut, "write downtime parts: freeze=") {
		t.Errorf("cutover did not print the parts of the write downtime")
	}
	m.script(t, 0, "cleanup.sh")
	if n := queryInt(t, m.srcSuper, `SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'pgferry%'`); n != 0 {
		t.Errorf("cleanup left %d pgferry triggers on the source", n)
	}
	if n := queryInt(t, m.dstSuper, `SELECT count(*) FROM pg_namespace WHERE nspname = 'pgferry'`); n != 0 {
		t.Errorf("cleanup left the pgferry schema on the target")
	}
}

var changesRE = regexp.MustCompile(`verify: ([0-9]+) table\(s\) verified by the [0-9]+ key\(s\) captured since their proof, [0-9]+ by a full hash`)

// TestMigrateKilledAndResumed SIGKILLs migrate.sh's whole process group twice, in the middle of
// the copy and in the middle of the index builds, re-runs it each time, and still ends equal after cutover.
func TestMigrateKilledAndResumed(t *testing.T) {
	requireTools(t)
	t.Parallel()
	m := newMigration(t, sizeMB(t, 10), false)
	m.env = append(m.env, "PGFERRY_SPLIT_SIZE=1MB") // many small chunks: the kill lands mid-copy
	w := m.startWriter(t)

	// kill 1: some chunks loaded, copy not finished
	m.killWhen(t, "copy", func() bool {
		return exists(m.stateDir, "done/capture") && queryIntQuiet(m.dstSuper, `SELECT count(*) FROM pgferry.copy_chunks`) >= 2
	})
	if exists(m.stateDir, "done/copy") {
		t.Fatalf("the first kill landed after the copy had finished; the test did not exercise a resumed copy")
	}
	// kill 2: in the middle of the index builds (some built, not all)
	m.killWhen(t, "indexes", func() bool {
		return exists(m.stateDir, "indexes.started") && queryIntQuiet(m.dstSuper, `SELECT count(*) FROM pg_index i
			JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname IN ('public', 'demo', 'Sales Data')`) >= 3
	})
	if exists(m.stateDir, "done/indexes") {
		t.Fatalf("the second kill landed after the indexes were built")
	}
	out := m.script(t, 0, "migrate.sh")
	for _, s := range []string{"roles: creating the source's roles on the target: already done",
		"capture: installing change capture on the source: already done",
		"copy: copying the data (2 workers, snapshot shared): already done",
		"indexes: an earlier run was interrupted"} {
		if !strings.Contains(out, s) {
			t.Errorf("re-run did not skip a finished step: missing %q", s)
		}
	}
	if !w.alive() {
		t.Fatal("the writer stopped before the cutover")
	}
	cut := m.script(t, 0, "cutover.sh")
	w.stoppedByFreeze(t)
	m.checkMigrated(t, cut)
}

// TestMigrateNonSuperuser migrates tables owned by a non-superuser source role into a database
// owned by a non-superuser target role, as on Heroku and RDS, with the writer running, copying
// with one snapshot per chunk.
func TestMigrateNonSuperuser(t *testing.T) {
	requireTools(t)
	t.Parallel()
	m := newMigration(t, sizeMB(t, 10), true)
	if n := queryInt(t, m.srcSuper, `SELECT count(*) FROM pg_roles WHERE rolname = current_user AND rolsuper`); n != 1 {
		t.Fatal("checks must run as superuser")
	}
	if n := queryInt(t, m.src, `SELECT count(*) FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolreplication)`); n != 0 {
		t.Fatal("the source role must not be a superuser")
	}
	if n := queryInt(t, m.srcSuper, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = 'postgres'`); n != 0 {
		t.Fatalf("%d source tables are owned by postgres, want all owned by the app role", n)
	}
	// also the per-chunk snapshot mode: keys first, first catch-up, then the other indexes
	m.env = append(m.env, "PGFERRY_SNAPSHOT=per-chunk", "PGFERRY_SPLIT_SIZE=256kB")
	w := m.startWriter(t)
	out := m.script(t, 0, "migrate.sh")
	if !strings.Contains(out, "first catch-up before the other indexes") {
		t.Errorf("migrate.sh did not build keys before the first catch-up in per-chunk mode")
	}
	time.Sleep(2 * time.Second)
	cut := m.script(t, 0, "cutover.sh")
	w.stoppedByFreeze(t)
	m.checkMigrated(t, cut)
	m.script(t, 0, "cleanup.sh")
}

// killWhen starts migrate.sh, SIGKILLs its process group as soon as cond holds, and fails if
// the script ends first.
func (m *migration) killWhen(t *testing.T, step string, cond func() bool) {
	t.Helper()
	cmd := m.command("migrate.sh")
	log, _ := os.Create(filepath.Join(t.TempDir(), "migrate-"+step+".log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(5 * time.Minute)
	for {
		select {
		case err := <-done:
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("migrate.sh ended (%v) before the kill at %s:\n%s", err, step, b)
		case <-deadline:
			t.Fatalf("timed out waiting for the %s step", step)
		case <-time.After(20 * time.Millisecond):
		}
		if cond() {
			break
		}
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	b, _ := os.ReadFile(log.Name())
	t.Logf("killed migrate.sh at %s:\n%s", step, b)
}

func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

// queryIntQuiet is queryInt for polling: -1 on any error (e.g. the table does not exist yet).
func queryIntQuiet(url, q string) int64 {
	var n int64 = -1
	ctx, conn, err := connectQuiet(url)
	if err != nil {
		return -1
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		return -1
	}
	return n
}

// TestMigrateFromFork follows the Heroku fork path: capture and a mark on the primary, a fork
// (a pg_basebackup of the source cluster, started as its own server) taken after the mark, the
// bulk copy read from the fork, and catch-up from the mark on the primary, with the writer running.
func TestMigrateFromFork(t *testing.T) {
	requireTools(t)
	t.Parallel()
	m := newMigration(t, sizeMB(t, 5), false)
	w := m.startWriter(t)
	out := m.script(t, 0, "migrate.sh", "--mark-only")
	if !strings.Contains(out, "now fork the source") {
		t.Fatalf("migrate.sh --mark-only did not ask for the fork")
	}
	// a fork without the mark must be refused: copy from a fork that does not exist yet
	m.script(t, 2, "migrate.sh", "--copy-from", "postgres://postgres@/nosuchdb?host=/nonexistent&sslmode=disable")

	time.Sleep(time.Second) // writes between the mark and the fork
	fork := startFork(t, pgtest.Shared(t, "source"), m.srcSuper)
	time.Sleep(time.Second) // and after the fork: only catch-up from the mark carries them
	out = m.script(t, 0, "migrate.sh", "--copy-from", fork)
	if !strings.Contains(out, "fork: catch-up starts at") {
		t.Errorf("migrate.sh did not take the catch-up position from the fork's mark")
	}
	time.Sleep(2 * time.Second)
	cut := m.script(t, 0, "cutover.sh")
	w.stoppedByFreeze(t)
	m.checkMigrated(t, cut)
}

// startFork takes a physical copy of cluster c and starts it on its own port; it returns the URL
// of the database of srcURL on the fork.
func startFork(t *testing.T, c *pgtest.Cluster, srcURL string) string {
	t.Helper()
	dir := filepath.Join(c.Dir, fmt.Sprintf("fork-%d", time.Now().UnixNano()))
	if out, err := c.Run("pg_basebackup", "-D", dir, "-h", c.SockDir, "-p", strconv.Itoa(c.Port), "-U", "postgres", "-X", "stream", "--no-sync", "--checkpoint=fast"); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	port := c.Port + 2000
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -p %d -c fsync=off -c max_connections=50", c.SockDir, port)
	if out, err := c.Run("pg_ctl", "start", "-w", "-t", "60", "-D", dir, "-l", filepath.Join(dir, "server.log"), "-o", opts); err != nil {
		t.Fatalf("start the fork: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		c.Run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", dir)
		os.RemoveAll(dir)
	})
	db := queryString(t, srcURL, "SELECT current_database()")
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable", db, c.SockDir, port)
}

// TestCutoverAbortsOnDifference damages one row on the target: the cutover must refuse, give
// writes back to the source, and succeed once the row is repaired.
func TestCutoverAbortsOnDifference(t *testing.T) {
	requireTools(t)
	t.Parallel()
	m := newMigration(t, 1, false)
	m.script(t, 0, "migrate.sh", "--no-follow")
	// Damage the target behind pgdelta's back, after migrate.sh's live proof: only a full hash can
	// see that (the default verify checks what changed since the proof; docs/verify.md).
	mustExec(t, m.dstSuper, `UPDATE demo.kv SET v = '{"damaged": true}' WHERE k = 'key:7'`)
	out := m.script(t, 1, "cutover.sh", "--verify-mode", "hash")
	if !strings.Contains(out, "the target differs from the source") || !strings.Contains(out, "writes restored on the source") {
		t.Errorf("cutover did not report the difference and restore writes")
	}
	m.requireWritable(t)
	mustExec(t, m.srcSuper, `INSERT INTO demo.kv (k, v) VALUES ('after-abort', '{}')`) // the source takes writes
	// repair the target the documented way, then cut over
	fix := exec.Command("bash", "-c", `pgverify --emit-fix -t demo.kv | pgdelta apply`)
	fix.Env = m.env
	if b, err := fix.CombinedOutput(); err != nil {
		t.Fatalf("repair: %v\n%s", err, b)
	}
	cut := m.script(t, 0, "cutover.sh")
	m.checkMigratedNoWriter(t, cut)
}
