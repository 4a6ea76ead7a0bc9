package stream

import (
	"os"
	"runtime"
)

// LimitProcs sets GOMAXPROCS to about one per 4 copy jobs (at most the CPUs), unless the
// GOMAXPROCS variable is set. Moving uncompressed frames costs little CPU; idle Go processors
// spinning for work would take cycles from the two database servers, which are the bottleneck
// of a copy on a shared machine (measured: about 1 CPU second less per 500 MB at -j 2).
func LimitProcs(jobs int) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	n := min(max(1, (jobs+3)/4), runtime.NumCPU())
	if n < runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(n)
	}
}
