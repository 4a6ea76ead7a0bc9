package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestMigrateDumpDirKilledAndResumed SIGKILLs migrate.sh --dump-dir in the middle of the dump (some
// chunk files written, the dump unfinished), writes to the source, re-runs it, which resumes the
// dump, and once the follower has caught up every table is equal row for row.
func TestMigrateDumpDirKilledAndResumed(t *testing.T) {
	requireTools(t)
	t.Parallel()
	m := newMigration(t, sizeMB(t, 2), true)
	dump := filepath.Join(t.TempDir(), "dump")
	m.env = append(m.env, "PGFERRY_SPLIT_SIZE=512kB", "PGFERRY_DUMP_DIR="+dump)
	m.killWhen(t, "copy-out", func() bool {
		files, _ := filepath.Glob(filepath.Join(dump, "*.chunk"))
		return len(files) >= 3
	})
	if exists(dump, "end.json") || exists(m.stateDir, "done/copy-out") {
		t.Fatalf("the kill landed after the dump had finished; the test did not exercise a resumed dump")
	}
	mustExec(t, m.src, `UPDATE demo.kv SET v = v || '{"resumed": true}' WHERE k IN (SELECT k FROM demo.kv ORDER BY k LIMIT 50);
DELETE FROM demo.kv WHERE k IN (SELECT k FROM demo.kv ORDER BY k DESC LIMIT 5)`)
	out := m.script(t, 0, "migrate.sh")
	if !strings.Contains(out, "copy: loading "+dump) {
		t.Errorf("re-run did not load the dump")
	}
	log, _ := os.ReadFile(filepath.Join(m.stateDir, "copy.log"))
	if !strings.Contains(string(log), "pgcopyout: resuming the unfinished dump in "+dump) {
		t.Errorf("the re-run did not resume the dump; copy.log:\n%s", log)
	}
	// no writer: once the follower has applied everything, the target equals the source
	deadline := time.Now().Add(time.Minute)
	for {
		err := exec.Command("pgdelta", "status", "--source", m.src, "--target", m.dst).Run()
		if err == nil {
			break
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || time.Now().After(deadline) {
			t.Fatalf("pgdelta status: %v (want caught up within a minute)", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	pgtest.RequireSameData(t, m.srcSuper, m.dstSuper)
	if n := queryInt(t, m.dstSuper, `SELECT count(*) FROM demo.kv WHERE v ? 'resumed'`); n != 50 {
		t.Errorf("target holds %d rows updated after the kill, want 50", n)
	}
}
