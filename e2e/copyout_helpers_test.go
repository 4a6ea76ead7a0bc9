package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildMu    sync.Mutex
	buildFails = map[string]string{}
)

// needTools makes sure the named tools are built into binDir (building them from the repository
// root when TestMain did not), and skips the test while one does not build yet, except under
// CI=true where that is a failure.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(binDir, name)); err == nil {
			continue
		}
		if msg, failed := buildFails[name]; failed {
			skipOrFail(t, name, msg)
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), "./cmd/"+name)
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			buildFails[name] = string(out)
			skipOrFail(t, name, string(out))
		}
	}
}

func skipOrFail(t *testing.T, name, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s does not build (CI=true makes this a failure):\n%s", name, msg)
	}
	t.Skipf("waiting for %s to build:\n%s", name, msg)
}
