package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// docRewrites ($$ is a literal $) are the only changes made to the documentation's commands before they run: the
// example URLs become the test clusters', a 'tail -f' ends, and the example role is the test's.
var docRewrites = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`^export PGFERRY_SOURCE=.*$`), `export PGFERRY_SOURCE="$$DOC_SOURCE"`},
	{regexp.MustCompile(`^export PGFERRY_TARGET=.*$`), `export PGFERRY_TARGET="$$DOC_TARGET"`},
	{regexp.MustCompile(`\btail -f `), `tail `},
	{regexp.MustCompile(`--app-role app\b`), `--app-role "$$APP_ROLE"`},
	// exit 1 is 'not caught up yet', which the docs show it may say
	{regexp.MustCompile(`^(pgdelta status\b[^#]*)`), `$1 || [ $$? -eq 1 ] `},
}

// docSkip are commands the docs show that this test does not run: the newcomer's demo and test
// suite (CI runs those itself).
var docSkip = regexp.MustCompile(`^(scripts/demo\.sh|scripts/test\.sh)\b`)

// docScript is the ```sh blocks of a Markdown file, in order, as one bash script.
func docScript(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	b.WriteString("set -euo pipefail\nset -x\n")
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "```sh"):
			in = true
		case strings.HasPrefix(l, "```"):
			in = false
		case in && !docSkip.MatchString(strings.TrimSpace(l)):
			for _, r := range docRewrites {
				l = r.re.ReplaceAllString(l, r.with)
			}
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestDocCommands runs every ```sh block of README.md and docs/runbook.md, in order, against the
// test clusters (sample data, non-superuser roles on both sides), so the documentation cannot
// drift from the tools: every command must succeed, and the target must end equal to the source.
func TestDocCommands(t *testing.T) {
	requireTools(t)
	t.Parallel()
	for _, doc := range []string{"README.md", "docs/runbook.md"} {
		t.Run(filepath.Base(doc), func(t *testing.T) {
			t.Parallel()
			m := newMigration(t, 5, true)
			script := docScript(t, filepath.Join(repoRoot, doc))
			if !strings.Contains(script, "scripts/migrate.sh") {
				t.Fatalf("%s shows no migration:\n%s", doc, script)
			}
			home := t.TempDir()
			cmd := exec.Command("bash", "-c", script)
			cmd.Dir = repoRoot
			role, _, _ := strings.Cut(strings.TrimPrefix(m.src, "postgres://"), "@") // the application's role
			// HOME is a fresh directory (the docs write ~/bin); Go's caches stay the real ones, or
			// the docs' go build would compile everything from nothing.
			cmd.Env = append(m.env, "HOME="+home, "GOCACHE="+goEnv(t, "GOCACHE"), "GOMODCACHE="+goEnv(t, "GOMODCACHE"), "DOC_SOURCE="+m.src, "DOC_TARGET="+m.dst, "APP_ROLE="+role,
				"PGFERRY_STATE_DIR="+filepath.Join(home, "pgferry-state"))
			out, err := cmd.CombinedOutput()
			t.Logf("%s:\n%s", doc, out)
			if err != nil {
				t.Fatalf("a command of %s failed: %v", doc, err)
			}
			// stop a follower the docs left running (the runbook's cleanup comes days later)
			if b, err := os.ReadFile(filepath.Join(home, "pgferry-state", "sync.pid")); err == nil {
				exec.Command("kill", strings.TrimSpace(string(b))).Run()
			}
			pgtest.RequireSameData(t, m.srcSuper, m.dstSuper)
		})
	}
}

// goEnv returns a setting of the go command as this process sees it.
func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}
