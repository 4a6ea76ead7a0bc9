package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestCutoverFenceHoldsEveryWriter is issue 14's first must-show. Three writers the polite freeze
// (ALTER DATABASE ... read_only, ending the named role's sessions) cannot stop: a session of a
// role --app-role does not name, which the non-superuser migrating role may neither end nor see,
// open before the freeze and inserting and updating in a loop throughout; new sessions of a role
// with ALTER ROLE ... SET default_transaction_read_only = off; and a prepared transaction. The
// first cutover times out waiting for the prepared transaction and gives writes back; the second
// waits for it (the test commits it during the wait) and finishes. Every write attempted while
// the fence was up failed with the fence's message, and every row the source committed is on the
// target. Then a re-run of cutover.sh changes nothing and migrate.sh refuses.
func TestCutoverFenceHoldsEveryWriter(t *testing.T) {
	requireTools(t)
	t.Parallel()
	m := newMigration(t, 1, true)
	f := newFenceWorld(t, m)
	w := m.startWriter(t)
	m.script(t, 0, "migrate.sh")
	f.prepare(t)
	writers := []*probeWriter{f.intruderWriter(t), f.rwoffWriter(t)}
	time.Sleep(time.Second)

	// 1: the prepared transaction is not resolved within --timeout: abort, writes come back
	out := m.script(t, 1, "cutover.sh", "--app-role", f.app, "--timeout", "4")
	w.stoppedByFreeze(t)
	for _, s := range []string{"prepared transaction gid '" + f.gid + "'", "stay open (roles: " + f.intruder,
		"the write fence stops their writes", "aborting the cutover", "writes restored on the source"} {
		if !strings.Contains(out, s) {
			t.Errorf("aborted cutover: output lacks %q", s)
		}
	}
	m.requireWritable(t)
	writers[0].succeedsAgain(t)

	// 2: the test commits the prepared transaction while the fence's proof waits for it
	run := m.start(t, "cutover.sh", "--app-role", f.app, "--timeout", "120")
	run.waitFor(t, "prepared transaction gid '"+f.gid+"'", time.Minute)
	time.Sleep(time.Second)
	mustExec(t, m.srcSuper, "COMMIT PREPARED '"+f.gid+"'")
	out = run.wait(t, 0)
	for _, pw := range writers {
		pw.halt(t)
	}
	m.checkMigrated(t, out)
	if n := queryInt(t, m.dstSuper, "SELECT count(*) FROM public.fence_probe WHERE who = 'prepared'"); n != 1 {
		t.Errorf("the prepared transaction's row is not on the target (%d rows)", n)
	}

	// after the cutover: a re-run says so and changes nothing; migrate.sh refuses
	downtime, _ := os.ReadFile(filepath.Join(m.stateDir, "downtime"))
	if out := m.script(t, 0, "cutover.sh"); !strings.Contains(out, "already finished") || !strings.Contains(out, "write downtime "+strings.TrimSpace(string(downtime))+"s") {
		t.Errorf("re-run of a finished cutover did not say it had finished with downtime %ss", downtime)
	}
	if again, _ := os.ReadFile(filepath.Join(m.stateDir, "downtime")); string(again) != string(downtime) {
		t.Errorf("re-run changed the recorded downtime from %q to %q", downtime, again)
	}
	if out := m.script(t, 1, "migrate.sh"); !strings.Contains(out, "refusing to restart the follower") {
		t.Errorf("migrate.sh after the cutover did not refuse")
	}
}

// requireWritable fails unless the source takes writes again: no read-only default, fence down.
func (m *migration) requireWritable(t *testing.T) {
	t.Helper()
	if n := queryInt(t, m.srcSuper, `SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
		WHERE d.datname = current_database() AND array_to_string(s.setconfig, ',') LIKE '%default_transaction_read_only%'`); n != 0 {
		t.Fatalf("the source is still read-only after the aborted cutover")
	}
	if up := queryString(t, m.srcSuper, "SELECT coalesce((SELECT is_called::text FROM pgferry.fence), 'no fence')"); up != "false" {
		t.Fatalf("the write fence is not down after the aborted cutover (is_called: %s)", up)
	}
}

// fenceWorld is the writers the polite freeze cannot stop, and their table public.fence_probe.
type fenceWorld struct {
	m                         *migration
	app, intruder, rwoff, gid string
	intruderConn              *pgx.Conn // opened before any freeze
}

func newFenceWorld(t *testing.T, m *migration) *fenceWorld {
	t.Helper()
	db := queryString(t, m.srcSuper, "SELECT current_database()")
	f := &fenceWorld{m: m, app: queryString(t, m.src, "SELECT current_user::text"),
		intruder: "intruder_" + db, rwoff: "rwoff_" + db, gid: "pgferry fence " + db}
	cs, cd := pgtest.Shared(t, "source"), pgtest.Shared(t, "target")
	mustExec(t, cs.URL("postgres"), fmt.Sprintf(`CREATE ROLE %q LOGIN; CREATE ROLE %[2]q LOGIN;
		ALTER ROLE %[2]q SET default_transaction_read_only = off`, f.intruder, f.rwoff))
	mustExec(t, m.src, fmt.Sprintf(`CREATE TABLE public.fence_probe (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, who text NOT NULL);
		GRANT SELECT, INSERT, UPDATE ON public.fence_probe TO %q, %q`, f.intruder, f.rwoff))
	t.Cleanup(func() {
		execQuiet(m.srcSuper, "ROLLBACK PREPARED '"+f.gid+"'")
		for _, c := range []*pgtest.Cluster{cs, cd} {
			url := m.srcSuper
			if c == cd {
				url = m.dstSuper
			}
			execQuiet(url, fmt.Sprintf("DROP OWNED BY %q, %q", f.intruder, f.rwoff))
			execQuiet(c.URL("postgres"), fmt.Sprintf("DROP ROLE IF EXISTS %q, %q", f.intruder, f.rwoff))
		}
	})
	f.intruderConn = f.connect(t, f.intruder)
	return f
}

// connect opens a session of role on the source, closed at the end of the test.
func (f *fenceWorld) connect(t *testing.T, role string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pgtest.Shared(t, "source").URLAs(queryString(t, f.m.srcSuper, "SELECT current_database()"), role))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// prepare leaves a prepared transaction holding a row of fence_probe.
func (f *fenceWorld) prepare(t *testing.T) {
	t.Helper()
	conn := f.connect(t, f.intruder)
	for _, sql := range []string{"BEGIN", "INSERT INTO public.fence_probe (id, who) VALUES (-1, 'prepared')", "PREPARE TRANSACTION '" + f.gid + "'"} {
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// intruderWriter inserts and updates through the one session opened before the freeze.
func (f *fenceWorld) intruderWriter(t *testing.T) *probeWriter {
	return startProbeWriter(t, "intruder", f.m.srcSuper, func(ctx context.Context, i int) error {
		sql, id := "INSERT INTO public.fence_probe (id, who) VALUES ($1, 'intruder')", 1_000_000+i
		if i%2 == 1 {
			sql, id = "UPDATE public.fence_probe SET n = n + 1 WHERE id = $1", id-1
		}
		_, err := f.intruderConn.Exec(ctx, sql, id)
		return err
	})
}

// rwoffWriter inserts through a new session each time, of the role whose own setting beats the
// database's read-only default.
func (f *fenceWorld) rwoffWriter(t *testing.T) *probeWriter {
	url := pgtest.Shared(t, "source").URLAs(queryString(t, f.m.srcSuper, "SELECT current_database()"), f.rwoff)
	return startProbeWriter(t, "rwoff", f.m.srcSuper, func(ctx context.Context, i int) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		var ro string
		if err := conn.QueryRow(ctx, "SHOW default_transaction_read_only").Scan(&ro); err != nil || ro != "off" {
			return fmt.Errorf("a new session of the role has default_transaction_read_only = %q (%v), want off", ro, err)
		}
		_, err = conn.Exec(ctx, "INSERT INTO public.fence_probe (id, who) VALUES ($1, 'rwoff')", 2_000_000+i)
		return err
	})
}

// probeWriter makes write attempts in a loop and judges each by the fence as read (by a superuser:
// the fence is not MVCC) just before and just after it: an attempt with the same raised fence on
// both sides happened entirely while the fence was up and must fail with the fence's message.
type probeWriter struct {
	name                              string
	mu                                sync.Mutex
	attempts, succeeded, fenced, edge int
	bad                               []string
	stop, done                        chan struct{}
}

func startProbeWriter(t *testing.T, name, observer string, attempt func(ctx context.Context, i int) error) *probeWriter {
	t.Helper()
	ctx := context.Background()
	obs, err := pgx.Connect(ctx, observer)
	if err != nil {
		t.Fatal(err)
	}
	w := &probeWriter{name: name, stop: make(chan struct{}), done: make(chan struct{})}
	mark := func() string {
		var s string
		if obs.QueryRow(ctx, "SELECT CASE WHEN is_called THEN 'up ' || last_value ELSE 'down' END FROM pgferry.fence").Scan(&s) != nil {
			return "unknown"
		}
		return s
	}
	go func() {
		defer close(w.done)
		defer obs.Close(ctx)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
			before := mark()
			err := attempt(ctx, i)
			w.record(i, before == mark() && strings.HasPrefix(before, "up "), err)
		}
	}()
	t.Cleanup(func() { w.halt(t) })
	return w
}

func (w *probeWriter) record(i int, underFence bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempts++
	fenceErr := err != nil && strings.Contains(err.Error(), capture.FenceMessage)
	switch {
	case underFence && fenceErr:
		w.fenced++
	case underFence:
		w.bad = append(w.bad, fmt.Sprintf("attempt %d, made while the fence was up, did not fail with the fence's message: %v", i, err))
	case err == nil:
		w.succeeded++
	case fenceErr:
		w.edge++ // the fence went up or down during the attempt
	default:
		w.bad = append(w.bad, fmt.Sprintf("attempt %d: %v", i, err))
	}
}

// succeedsAgain waits until one of the writer's attempts succeeds again.
func (w *probeWriter) succeedsAgain(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	n := w.succeeded
	w.mu.Unlock()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		w.mu.Lock()
		ok := w.succeeded > n
		w.mu.Unlock()
		if ok {
			return
		}
	}
	t.Fatalf("%s: no write succeeded after the aborted cutover gave writes back", w.name)
}

// halt stops the writer (once) and checks its record: some attempts fenced, none wrong.
func (w *probeWriter) halt(t *testing.T) {
	t.Helper()
	select {
	case <-w.stop:
		return
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("%s: %d attempts, %d succeeded, %d refused by the fence while it was up, %d at its edges", w.name, w.attempts, w.succeeded, w.fenced, w.edge)
	if w.fenced == 0 {
		t.Errorf("%s: no attempt was made while the fence was up", w.name)
	}
	for _, b := range w.bad[:min(len(w.bad), 10)] {
		t.Errorf("%s: %s", w.name, b)
	}
}

// running is a script started in the background, its output in a file.
type running struct {
	done chan int
	log  string
}

// start runs a script in the background; wait collects it.
func (m *migration) start(t *testing.T, script string, args ...string) *running {
	t.Helper()
	cmd := m.command(script, args...)
	log := filepath.Join(t.TempDir(), strings.TrimSuffix(script, ".sh")+".log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &running{done: make(chan int, 1), log: log}
	go func() {
		cmd.Wait()
		f.Close()
		r.done <- cmd.ProcessState.ExitCode()
	}()
	return r
}

func (r *running) output() string {
	b, _ := os.ReadFile(r.log)
	return string(b)
}

// waitFor waits until the script's output holds s.
func (r *running) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if strings.Contains(r.output(), s) {
			return
		}
	}
	t.Fatalf("the script did not print %q within %s:\n%s", s, timeout, r.output())
}

// wait waits for the script to end and fails unless it exited with want; returns its output.
func (r *running) wait(t *testing.T, want int) string {
	t.Helper()
	code := <-r.done
	out := r.output()
	t.Logf("background script: exit %d\n%s", code, out)
	if code != want {
		t.Fatalf("the script exited %d, want %d", code, want)
	}
	return out
}
