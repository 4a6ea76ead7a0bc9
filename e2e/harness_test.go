// Package e2e drives the real pgferry binaries and scripts against throwaway clusters.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// binDir holds the freshly built tools; it is put first on PATH for scripts and exec.
var binDir string

// repoRoot is the module root, for scripts/.
var repoRoot string

// buildErrs holds the build output of each tool that did not build.
var buildErrs = map[string]string{}

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	dir, err := os.MkdirTemp("", "pgferry-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binDir = dir
	cmds, _ := filepath.Glob(filepath.Join(repoRoot, "cmd", "*"))
	for _, c := range cmds {
		name := filepath.Base(c)
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), "./cmd/"+name)
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			// A tool that does not build fails the tests that use it, not every test.
			buildErrs[name] = fmt.Sprintf("%v\n%s", err, out)
			fmt.Fprintf(os.Stderr, "e2e: build %s: %s", name, buildErrs[name])
		}
	}
	os.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	code := m.Run()
	pgtest.StopAll()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needTools skips the test while one of the named tools does not build, except under CI=true,
// where that is a failure.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(binDir, name)); err == nil {
			continue
		}
		msg := buildErrs[name]
		if msg == "" {
			msg = "no cmd/" + name
		}
		if pgtest.Required() {
			t.Fatalf("%s is not built (CI=true makes this a failure): %s", name, msg)
		}
		t.Skipf("waiting for %s: %s", name, msg)
	}
}
