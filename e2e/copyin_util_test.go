package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var copyinBuildMu sync.Mutex

// copyinTools builds pgcopyout and pgcopyin into binDir from the repository root when TestMain
// did not (its build runs in e2e/, where ./cmd/... does not resolve).
func copyinTools(t *testing.T) {
	t.Helper()
	copyinBuildMu.Lock()
	defer copyinBuildMu.Unlock()
	for _, name := range []string{"pgcopyout", "pgcopyin"} {
		if _, err := os.Stat(filepath.Join(binDir, name)); err == nil {
			continue
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), "./cmd/"+name)
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
}
