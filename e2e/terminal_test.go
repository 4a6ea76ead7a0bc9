package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestTerminalPipeline runs 'pgcopyout | pv | pgcopyin' on a real terminal (a tmux pane, 200
// columns) and reads the pane: each tool's progress is its own labelled line, pv's meter is not
// written over, and both tools end with a summary that says done.
func TestTerminalPipeline(t *testing.T) {
	needTools(t, "pgcopyout", "pgcopyin")
	for _, bin := range []string{"tmux", "pv"} {
		if _, err := exec.LookPath(bin); err != nil {
			if pgtest.Required() {
				t.Fatalf("%s is needed for the terminal test (CI=true makes this a failure)", bin)
			}
			t.Skipf("no %s", bin)
		}
	}
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := `CREATE TABLE big (id bigint PRIMARY KEY, body text); CREATE TABLE small (id int PRIMARY KEY);`
	src.Exec(t, ddl+`INSERT INTO big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 200000) g;
		INSERT INTO small SELECT generate_series(1, 10); ANALYZE;`)
	dst.Exec(t, ddl)

	dir := t.TempDir()
	done := filepath.Join(dir, "done")
	script := filepath.Join(dir, "pipe.sh")
	body := "set -o pipefail\npgcopyout --source '" + src.URL + "' --one-off -j 2 --split-size 1MB | pv -N stream | pgcopyin --target '" +
		dst.URL + "' -j 2\necho \"exit=$?\" > " + done + "\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	session := "pgferry-" + strings.ReplaceAll(filepath.Base(dir), ".", "")
	tmux := func(args ...string) string {
		out, err := exec.Command("tmux", append([]string{"-L", session}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "50", "env", "PATH="+os.Getenv("PATH"), "bash", "--norc", "-c", "bash "+script+"; sleep 60")
	t.Cleanup(func() { exec.Command("tmux", "-L", session, "kill-server").Run() })
	deadline := time.Now().Add(90 * time.Second)
	for {
		if b, err := os.ReadFile(done); err == nil {
			if strings.TrimSpace(string(b)) != "exit=0" {
				t.Fatalf("pipeline: %s\n%s", b, tmux("capture-pane", "-p", "-t", session))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pipeline did not finish:\n%s", tmux("capture-pane", "-p", "-t", session))
		}
		time.Sleep(200 * time.Millisecond)
	}
	pane := tmux("capture-pane", "-p", "-t", session)
	t.Logf("pane:\n%s", pane)
	for _, tool := range []string{"pgcopyout", "pgcopyin"} {
		re := regexp.MustCompile(`(?m)^` + tool + `: 2/2 tables, 200010 rows, .*, done in \S+\s*$`)
		if !re.MatchString(pane) {
			t.Errorf("no labelled final line of %s on its own line", tool)
		}
	}
	// every non-empty line is one tool's labelled line or pv's meter, never a mix
	for _, l := range strings.Split(pane, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if !regexp.MustCompile(`^(pgcopyout: |pgcopyin: |stream: )`).MatchString(l) || strings.Contains(l[1:], "pgcopyout: ") || strings.Contains(l[1:], "pgcopyin: ") {
			t.Errorf("line is not one labelled line: %q", l)
		}
	}
}
