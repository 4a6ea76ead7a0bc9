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
			fmt.Fprintf(os.Stderr, "e2e: build %s: %v\n%s", name, err, out)
		}
	}
	os.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	code := m.Run()
	pgtest.StopAll()
	os.RemoveAll(dir)
	os.Exit(code)
}
