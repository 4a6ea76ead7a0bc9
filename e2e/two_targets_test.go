package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// fleet is one source followed by several targets, each database owned by a non-superuser.
type fleet struct {
	src  string            // source owner's URL
	dst  map[string]string // target name -> its owner's URL
	env  []string          // environment without PGFERRY_*, DATABASE_URL or PG* settings
	dir  string
	sync map[string]*exec.Cmd
	logs map[string]*strings.Builder
}

// ownedDB creates a database on cluster owned by a new login role and returns its URL.
func ownedDB(t *testing.T, cluster string) string {
	t.Helper()
	c := pgtest.Shared(t, cluster)
	name, err := c.CreateDB(context.Background(), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	role := "own_" + name
	if len(role) > 60 {
		role = role[:60]
	}
	mustExec(t, c.URL("postgres"), fmt.Sprintf(`CREATE ROLE %q LOGIN; ALTER DATABASE %q OWNER TO %q`, role, name, role))
	t.Cleanup(func() {
		c.DropDB(name)
		execQuiet(c.URL("postgres"), fmt.Sprintf(`DROP ROLE IF EXISTS %q`, role))
	})
	return c.URLAs(name, role)
}

func newFleet(t *testing.T, targets ...string) *fleet {
	t.Helper()
	f := &fleet{src: ownedDB(t, "source"), dst: map[string]string{}, dir: t.TempDir(), sync: map[string]*exec.Cmd{}, logs: map[string]*strings.Builder{}}
	mustExec(t, f.src, deltaDDL+deltaSeed)
	for _, name := range targets {
		f.dst[name] = ownedDB(t, "target")
		mustExec(t, f.dst[name], deltaDDL)
	}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PG") && !strings.HasPrefix(e, "DATABASE_URL=") {
			f.env = append(f.env, e)
		}
	}
	f.env = append(f.env, "PGFERRY_SOURCE="+f.src, "PGFERRY_PROGRESS=none")
	t.Cleanup(func() {
		for _, cmd := range f.sync {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	})
	return f
}

// run runs a bash line with PGFERRY_TARGET set to target's URL ("" for none).
func (f *fleet) run(t *testing.T, target, line string) (string, int) {
	t.Helper()
	cmd := exec.Command("bash", "-c", line)
	cmd.Env, cmd.Dir = append(f.env, "PGFERRY_TARGET="+f.dst[target]), f.dir
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return string(out), 0
}

func (f *fleet) must(t *testing.T, target, line string) string {
	t.Helper()
	out, code := f.run(t, target, line)
	if code != 0 {
		t.Fatalf("%s (target %s): exit %d\n%s", line, target, code, out)
	}
	return out
}

// follow starts 'pgdelta sync --follow' for target, pruning after every batch.
func (f *fleet) follow(t *testing.T, target string) {
	t.Helper()
	cmd := exec.Command("pgdelta", "sync", "--follow", "--prune-every", "0", "--max-interval", "100ms")
	cmd.Env = append(f.env, "PGFERRY_TARGET="+f.dst[target])
	f.logs[target] = &strings.Builder{}
	cmd.Stdout, cmd.Stderr = f.logs[target], f.logs[target]
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.sync[target] = cmd
}

// stop ends target's follower and fails the test if it had stopped on its own.
func (f *fleet) stop(t *testing.T, target string) {
	t.Helper()
	cmd := f.sync[target]
	delete(f.sync, target)
	if cmd.ProcessState == nil {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() != 130 && ee.ExitCode() != -1 {
		t.Fatalf("follower of %s ended with %v:\n%s", target, err, f.logs[target])
	}
}

func deltaRows(t *testing.T, url string) int64 {
	t.Helper()
	return queryInt(t, url, `SELECT coalesce(sum((xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM pgferry.%I', delta_table), false, true, '')))[1]::text::bigint), 0) FROM pgferry.capture_tables`)
}

// TestTwoTargets: two targets follow one source under writes. Each is registered on the source
// (pgcopyout --target does it before its snapshot), the followers prune after every batch, and
// pruning waits for the slower one, so both end equal to the source (full comparison) and the
// delta tables are empty once both have confirmed everything. A third target, copied without
// --target (not registered) while the others pruned past its snapshot, is refused by pgdelta
// sync before anything is written to it, with the reason.
func TestTwoTargets(t *testing.T) {
	needTools(t, "pgtrig", "pgcopyout", "pgcopyin", "pgdelta")
	f := newFleet(t, "A", "B", "C")
	f.must(t, "", "pgtrig install")
	stop := make(chan struct{})
	writers := deltaWriters(t, f.src, 3, 14, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		writers.Wait()
	}()

	f.must(t, "A", "set -o pipefail; pgcopyout --target \"$PGFERRY_TARGET\" | pgcopyin")
	f.follow(t, "A")
	time.Sleep(2 * time.Second)
	// C: a copy that registers nothing (the directory form, without --target or PGFERRY_TARGET).
	f.must(t, "C", "env -u PGFERRY_TARGET pgcopyout -o dumpC && pgcopyin -i dumpC")
	f.must(t, "B", "set -o pipefail; pgcopyout --target \"$PGFERRY_TARGET\" | pgcopyin")
	time.Sleep(3 * time.Second) // A prunes on while B has not started following: B must keep its changes
	f.follow(t, "B")
	time.Sleep(3 * time.Second)

	out, code := f.run(t, "C", "timeout 60 pgdelta sync --until-caught-up")
	if code != 1 || !strings.Contains(out, "were already pruned") || !strings.Contains(out, "pgcopyout --target") {
		t.Fatalf("unregistered target C: exit %d, want 1 and the pruned refusal:\n%s", code, out)
	}
	if n := queryInt(t, f.dst["C"], "SELECT count(*) FROM pgferry.apply_position") + queryInt(t, f.dst["C"], "SELECT count(*) FROM pg_class WHERE relname = 'target_id'"); n != 0 {
		t.Errorf("pgdelta wrote into the refused target C (an apply position or a target id)")
	}

	close(stop)
	writers.Wait()
	for _, tg := range []string{"A", "B"} {
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, code := f.run(t, tg, "pgdelta status"); code == 0 {
				break
			}
			if time.Now().After(deadline) {
				out, _ := f.run(t, tg, "pgdelta status")
				t.Fatalf("target %s did not catch up:\n%s\nfollower:\n%s", tg, out, f.logs[tg])
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, tg := range []string{"A", "B"} {
		f.stop(t, tg)
		f.must(t, tg, "pgdelta sync --until-caught-up && pgdelta prune")
		pgtest.RequireSameData(t, f.src, f.dst[tg])
	}
	if n := deltaRows(t, f.src); n != 0 {
		t.Errorf("%d delta rows left after both targets confirmed everything", n)
	}
	list := f.must(t, "", "pgdelta targets")
	if strings.Count(list, "(state schema pgferry)") != 2 { // A and B; C's copy and its refused sync registered nothing
		t.Errorf("pgdelta targets lists other than A and B:\n%s", list)
	}
	// the registry goes with the capture schema
	f.must(t, "", "pgtrig remove")
	if n := queryInt(t, f.src, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgferry'"); n != 0 {
		t.Error("pgtrig remove left the capture schema (and the target registry) behind")
	}
}
