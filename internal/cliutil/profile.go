package cliutil

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile to $PGFERRY_CPUPROFILE.<tool> (a diagnostics aid for benchmarks);
// the returned function stops it.
func startProfile(tool string) func() {
	path := os.Getenv("PGFERRY_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path + "." + tool)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cpu profile: %v\n", tool, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "%s: cpu profile: %v\n", tool, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
