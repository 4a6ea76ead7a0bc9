// Package e2e drives the real pgferry tools and scripts against throwaway clusters.
package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/pgferry/pgferry/internal/copyin"
	"github.com/pgferry/pgferry/internal/copyout"
	"github.com/pgferry/pgferry/internal/delta"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/schema"
	"github.com/pgferry/pgferry/internal/trig"
	"github.com/pgferry/pgferry/internal/verify"
)

// binDir holds the tools (copies of the test binary that run as the tool they are named
// after); it is first on PATH, for the scripts, exec and the testdata scripts.
var binDir string

// repoRoot is the module root, for scripts/.
var repoRoot string

// toolMains are the six tools, each run as its cmd/<tool>/main.go runs it.
var toolMains = map[string]func(){
	"pgschema":  func() { os.Exit(schema.Main(os.Args)) },
	"pgtrig":    func() { os.Exit(trig.Main(os.Args)) },
	"pgcopyout": func() { os.Exit(copyout.Main(os.Args)) },
	"pgcopyin":  func() { os.Exit(copyin.Main(os.Args)) },
	"pgdelta":   func() { os.Exit(delta.Main(os.Args)) },
	"pgverify":  func() { os.Exit(verify.Main(os.Args)) },
}

// TestMain registers the tools with testscript: run under a tool's name, the test binary is that
// tool; otherwise testscript puts the tools on PATH and runs the tests.
func TestMain(m *testing.M) { testscript.Main(harness{m}, toolMains) }

type harness struct{ m *testing.M }

func (h harness) Run() int {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	if p, err := exec.LookPath("pgschema"); err == nil {
		binDir = filepath.Dir(p)
	}
	code := h.m.Run()
	pgtest.StopAll()
	return code
}

// needTools fails the test unless the named tools are on PATH from binDir (they always are once
// the test binary builds: a guard against a tool left out of toolMains).
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, ok := toolMains[name]; !ok || binDir == "" {
			t.Fatalf("%s is not registered in e2e's toolMains", name)
		}
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			t.Fatalf("%s is not on PATH: %v", name, err)
		}
	}
}
