package stream

import (
	"os"
	"path/filepath"
	"runtime/pprof"
)

// StartProfile writes a CPU profile to PGFERRY_CPUPROFILE.<tool>, if that variable is set, until the
// returned stop is called (a diagnostics aid for the copy tools).
func StartProfile() (stop func()) {
	name := os.Getenv("PGFERRY_CPUPROFILE")
	if name == "" {
		return func() {}
	}
	f, err := os.Create(name + "." + filepath.Base(os.Args[0]))
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}
