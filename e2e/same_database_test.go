package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// sameDB is a source database owned by a non-superuser, as a migration's source is, with the
// environment of an operator who set only DATABASE_URL.
type sameDB struct {
	db         *pgtest.DB
	url, kv    string // the owner's URL, and the same database as a key=value string
	env        []string
	dir        string
	before     map[string][]string
	beforeSeqs string
}

func newSameDB(t *testing.T, ddl string) *sameDB {
	t.Helper()
	db := pgtest.Source(t)
	role := "own_" + db.Name
	if len(role) > 60 {
		role = role[:60]
	}
	db.Exec(t, fmt.Sprintf(`CREATE ROLE %q LOGIN; ALTER DATABASE %q OWNER TO %q`, role, db.Name, role))
	t.Cleanup(func() {
		db.Cluster.DropDB(db.Name)
		execQuiet(db.Cluster.URL("postgres"), fmt.Sprintf(`DROP ROLE IF EXISTS %q`, role))
	})
	s := &sameDB{db: db, url: db.URLAs(role), dir: t.TempDir(),
		kv: fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=disable", db.Cluster.SockDir, db.Cluster.Port, db.Name, role)}
	mustExec(t, s.url, ddl)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PGFERRY_") && !strings.HasPrefix(e, "PG") && !strings.HasPrefix(e, "DATABASE_URL=") {
			s.env = append(s.env, e)
		}
	}
	s.env = append(s.env, "DATABASE_URL="+s.url)
	return s
}

// snapshot records every user table's rows and every sequence's state.
func (s *sameDB) snapshot(t *testing.T) {
	t.Helper()
	s.before = map[string][]string{}
	for _, tb := range pgtest.UserTables(t, s.url) {
		s.before[tb] = pgtest.TableDump(t, s.url, tb, nil)
	}
	s.beforeSeqs = queryString(t, s.url, seqStateSQL)
}

const seqStateSQL = `SELECT coalesce(string_agg(format('%s=%s', c.relname, pg_sequence_last_value(c.oid)), ',' ORDER BY c.relname), '')
FROM pg_class c WHERE c.relkind = 'S'`

// requireUnchanged fails unless the source holds exactly what snapshot saw, and no pgferry
// state (copy, apply, target registry) was created in it.
func (s *sameDB) requireUnchanged(t *testing.T) {
	t.Helper()
	now := pgtest.UserTables(t, s.url)
	if len(now) != len(s.before) {
		t.Fatalf("tables now %v, before %d", now, len(s.before))
	}
	for _, tb := range now {
		got := pgtest.TableDump(t, s.url, tb, nil)
		if strings.Join(got, "\n") != strings.Join(s.before[tb], "\n") {
			t.Errorf("%s changed: %d rows before, %d now", tb, len(s.before[tb]), len(got))
		}
	}
	if got := queryString(t, s.url, seqStateSQL); got != s.beforeSeqs {
		t.Errorf("sequences changed: %s, before %s", got, s.beforeSeqs)
	}
	state := queryString(t, s.url, `SELECT coalesce(string_agg(c.relname, ','), '') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'pgferry' AND c.relname IN ('copy_chunks', 'copy_plan', 'apply_position', 'target_id', 'targets', 'prune_horizon')`)
	if state != "" {
		t.Errorf("pgferry state was written into the source: %s", state)
	}
}

// run runs a bash command line with only DATABASE_URL set and returns its output and exit code.
func (s *sameDB) run(t *testing.T, timeout time.Duration, line string) (string, int) {
	t.Helper()
	cmd := exec.Command("bash", "-c", line)
	cmd.Env, cmd.Dir = s.env, s.dir
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(timeout):
			if cmd.Process != nil {
				cmd.Process.Kill()
			}
		}
	}()
	out, err := cmd.CombinedOutput()
	close(done)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return string(out), code
}

// refused runs line (whose last command's status is echoed as "rc=N" when it is a pipeline) and
// fails unless it exited 2 with the same-database message and hint.
func (s *sameDB) refused(t *testing.T, line string) {
	t.Helper()
	start := time.Now()
	out, code := s.run(t, 60*time.Second, line)
	if strings.Contains(line, "PIPESTATUS") {
		i := strings.LastIndex(out, "rc=")
		if i < 0 {
			t.Fatalf("%s: no exit status in output:\n%s", line, out)
		}
		fmt.Sscanf(out[i:], "rc=%d", &code)
	}
	if code != 2 || !strings.Contains(out, "is the same database") || !strings.Contains(out, "hint:") || !strings.Contains(out, s.db.Name) {
		t.Fatalf("%s: exit %d after %s, want 2 and the same-database refusal:\n%s", line, code, time.Since(start).Round(time.Millisecond), out)
	}
	if strings.Contains(out, "password") {
		t.Errorf("a password in the message:\n%s", out)
	}
	t.Logf("%s: refused in %s", line, time.Since(start).Round(time.Millisecond))
}

// TestSameDatabaseRefused is the scenario: with only DATABASE_URL set, 'pgcopyout
// --one-off | pgcopyin --truncate' emptied a two-table source and exited 0. Now pgcopyin refuses
// (exit 2) before writing anything, from the identity the stream header carries, also from a
// directory; pgcopyout --target refuses a target that is the source under another connection
// string; the source is compared in full afterwards.
func TestSameDatabaseRefused(t *testing.T) {
	needTools(t, "pgcopyout", "pgcopyin")
	const ddl = `CREATE TABLE public.accounts(id serial PRIMARY KEY, name text, bal numeric);
CREATE TABLE public.orders(id bigint PRIMARY KEY, account int, total numeric, note text);`
	s := newSameDB(t, ddl+`
INSERT INTO public.accounts(name, bal) SELECT 'a' || g, g * 1.5 FROM generate_series(1, 500) g;
INSERT INTO public.orders SELECT g, g % 500 + 1, g * 0.25, repeat('x', g % 40) FROM generate_series(1, 2000) g;`)
	s.snapshot(t)
	s.refused(t, `pgcopyout --one-off | pgcopyin --truncate; echo "rc=${PIPESTATUS[1]}"`)
	s.refused(t, `pgcopyout --one-off -o dump && pgcopyin -i dump --truncate`)
	s.refused(t, fmt.Sprintf(`pgcopyout --one-off --target %q | pgcopyin --target %q; echo "rc=${PIPESTATUS[0]}"`, s.kv, s.kv))
	s.requireUnchanged(t)

	// A dump of an older pgcopyout names no source: it still loads elsewhere, with a note.
	path := filepath.Join(s.dir, "dump", "header.json")
	var hdr map[string]any
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &hdr)
	}
	if err != nil || hdr["source"] == nil {
		t.Fatalf("header.json: %v, source %v", err, hdr["source"])
	}
	delete(hdr, "source")
	if b, err = json.Marshal(hdr); err != nil || os.WriteFile(path, b, 0o644) != nil {
		t.Fatal(err)
	}
	other := pgtest.Target(t)
	mustExec(t, other.URL, ddl)
	out, code := s.run(t, time.Minute, fmt.Sprintf("pgcopyin -i dump --target %q", other.URL))
	if code != 0 || !strings.Contains(out, "does not name its source") {
		t.Fatalf("old dump: exit %d\n%s", code, out)
	}
	pgtest.RequireSameData(t, s.url, other.URL)
}

// TestSameDatabaseRefusedWhileCopying: with three larger tables the old pgcopyin hung, its
// TRUNCATE queued behind the copy's own locks (blocking every query on a live source). Now it
// refuses at once, pgcopyout ends on the closed pipe, and nothing waits.
func TestSameDatabaseRefusedWhileCopying(t *testing.T) {
	needTools(t, "pgcopyout", "pgcopyin")
	var ddl strings.Builder
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&ddl, `CREATE TABLE public.big%[1]d(id int PRIMARY KEY, pad text);
INSERT INTO public.big%[1]d SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 60000) g;
`, i)
	}
	s := newSameDB(t, ddl.String())
	s.snapshot(t)
	s.refused(t, `pgcopyout --one-off -j 3 --split-size 1MB | pgcopyin --truncate; echo "rc=${PIPESTATUS[1]}"`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		n := queryInt(t, s.url, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgferry-%'")
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pgferry sessions still open on the source", n)
		}
	}
	s.requireUnchanged(t)
}

// TestSameDatabaseRefusedDelta: every pgdelta command that writes or reads both sides, and
// pgverify, refuse one database given as both (DATABASE_URL only, or two spellings of it);
// pgdelta apply refuses from the source identity in the stream's begin record.
func TestSameDatabaseRefusedDelta(t *testing.T) {
	needTools(t, "pgtrig", "pgdelta", "pgverify")
	s := newSameDB(t, `CREATE TABLE public.items(id serial PRIMARY KEY, v text);
CREATE TABLE public.notes(k text PRIMARY KEY, body text);
INSERT INTO public.items(v) SELECT 'v' || g FROM generate_series(1, 300) g;
INSERT INTO public.notes SELECT 'k' || g, 'b' || g FROM generate_series(1, 100) g;`)
	if out, code := s.run(t, time.Minute, "pgtrig install"); code != 0 {
		t.Fatalf("pgtrig install: exit %d\n%s", code, out)
	}
	pos := queryString(t, s.url, "SELECT txid_current_snapshot()::text")
	mustExec(t, s.url, "UPDATE public.items SET v = v || '!' WHERE id <= 10; INSERT INTO public.notes VALUES ('new', 'n')")
	s.snapshot(t)
	from := fmt.Sprintf(" --from %q", pos)
	for _, line := range []string{
		"pgdelta sync --until-caught-up" + from,
		"pgdelta sync --follow",
		"pgdelta status",
		"pgdelta sequences --margin 1000",
		"pgdelta prune",
		"pgdelta targets --register",
		fmt.Sprintf("pgdelta sync --until-caught-up --source %q --target %q", s.url, s.kv),
		`pgdelta stream` + from + ` | pgdelta apply; echo "rc=${PIPESTATUS[1]}"`,
		fmt.Sprintf(`pgdelta stream %s | pgdelta apply --target %q; echo "rc=${PIPESTATUS[1]}"`, from, s.kv),
		"pgverify",
		fmt.Sprintf("pgverify --source %q --target %q --mode count", s.kv, s.url),
	} {
		s.refused(t, line)
	}
	s.requireUnchanged(t)
}
