// Package verify implements pgverify: it proves source and target hold the same rows and names the rows that differ.
package verify

import (
	"time"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/progress"
)

// Exit codes of pgverify (2 is cliutil.ExitUsage: error or no connection).
const (
	ExitSame          = 0
	ExitDiffer        = 1
	ExitError         = 2
	ExitNotComparable = 3
)

// Config is everything one pgverify run needs.
type Config struct {
	SourceURL, TargetURL string
	Mode                 string // quick, count, hash
	Jobs                 int
	Filter               catalog.Filter
	SkipSchemas          []string
	StateSchema          string        // target state schema, read by --emit-fix, holds the proofs
	CaptureSchema        string        // source capture schema, read by --mode changes
	MaxProofAge          time.Duration // --mode changes: older proofs count as none (0: any age)
	NoRecord             bool          // do not record proofs on the target
	MaxDiffs             int
	Recheck              time.Duration
	EmitFix              bool
	JSON                 bool
	Terminal             bool          // stdout (or the report writer) is a terminal: print a table
	HashFunc             string        // auto, hashtextextended, md5
	ChunkRows            int64         // rows per key-range chunk of a big table
	Progress             progress.Mode // of the hash scan, on stderr ("" = auto)
	ProgressEvery        time.Duration // between periodic progress lines (0 = the mode's default)
	NoLargeObjects       bool          // do not compare large objects (pg_largeobject)
}
