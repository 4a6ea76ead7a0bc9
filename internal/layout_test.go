// Package internal_test checks the package layout: tool packages import shared packages only,
// and every command's main stays a few lines.
package internal_test

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/pgferry/pgferry/"

// toolPackages are the packages whose Main a cmd/*/main.go calls.
var toolPackages = []string{"schema", "trig", "copyout", "copyin", "delta", "verify"}

// TestToolsImportNoOtherTool: a tool package reaches another tool's logic only through a shared
// package (go list -deps, so an indirect import through a shared package counts too).
func TestToolsImportNoOtherTool(t *testing.T) {
	isTool := map[string]string{}
	for _, p := range toolPackages {
		isTool[module+"internal/"+p] = p
	}
	for _, p := range toolPackages {
		out, err := exec.Command("go", "list", "-deps", "-json=ImportPath", "./"+p).Output()
		if err != nil {
			t.Fatalf("go list -deps ./%s: %v", p, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for {
			var pkg struct{ ImportPath string }
			if err := dec.Decode(&pkg); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("read go list output: %v", err)
			}
			if other, ok := isTool[pkg.ImportPath]; ok && other != p {
				t.Errorf("internal/%s imports tool package internal/%s: move what they share into a small internal package", p, other)
			}
		}
	}
}

// TestMainsAreThin: every cmd/*/main.go only calls its tool's Main.
func TestMainsAreThin(t *testing.T) {
	mains, err := filepath.Glob("../cmd/*/main.go")
	if err != nil || len(mains) == 0 {
		t.Fatalf("no cmd/*/main.go found (%v)", err)
	}
	for _, m := range mains {
		src, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(src), "\n"); n > 15 {
			t.Errorf("%s has %d lines: keep the command line in internal/<tool>", m, n)
		}
		if !strings.Contains(string(src), ".Main(os.Args)") {
			t.Errorf("%s does not call its tool's Main(os.Args)", m)
		}
	}
}
