package schema

import "fmt"

// Fix is the kind of fix a schema error calls for; the command line words it (present).
type Fix int

// Fixes.
const (
	FixIncomplete    Fix = iota // the input is not complete pg_dump output
	FixTruncated                // the dump ends inside a statement: dump again
	FixEmpty                    // no statements: pipe a dump in
	FixEdited                   // a pg_dump header and its statement disagree
	FixInstallPgDump            // the pg_dump binary cannot be run
	FixPgDumpTooOld             // pg_dump is older than the server (Need names the version)
	FixPgDumpRights             // pg_dump failed, most often for want of rights
)

// Error is a schema operation that failed for a reason the operator fixes; Fix says which.
type Error struct {
	Err  error
	Fix  Fix
	Need string // FixPgDumpTooOld: the pg_dump major version needed
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func errorf(fix Fix, format string, args ...any) error {
	return &Error{Err: fmt.Errorf(format, args...), Fix: fix}
}
