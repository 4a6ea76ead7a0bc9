package cliutil

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
)

// ErrBadValue is what a parser given to ReadFlag returns for a value it refuses without saying
// more: ReadFlag turns it into "bad --NAME VALUE".
var ErrBadValue = errors.New("bad value")

// FlagReader reads flag values through parsers and keeps the first refusal as a usage error
// (exit 2), so an action reads all its flags and checks once.
type FlagReader struct {
	c   *cli.Context
	Err error // the first refusal, nil if none
}

// NewFlagReader reads the flags of c.
func NewFlagReader(c *cli.Context) *FlagReader { return &FlagReader{c: c} }

// ReadFlag parses the string value of flag name; after a refusal (this one or an earlier one)
// it returns T's zero value and r.Err says why.
func ReadFlag[T any](r *FlagReader, name string, parse func(string) (T, error)) T {
	var zero T
	if r.Err != nil {
		return zero
	}
	s := r.c.String(name)
	v, err := parse(s)
	switch {
	case errors.Is(err, ErrBadValue):
		r.Err = Usagef("bad --%s %q", name, s)
	case err != nil:
		r.Err = WithCode(ExitUsage, err)
	default:
		return v
	}
	return zero
}

// SizeAtLeast is a parser for ReadFlag: a size (ParseSize) of at least min bytes, else ErrBadValue.
func SizeAtLeast(min int64) func(string) (int64, error) {
	return func(s string) (int64, error) {
		n, err := ParseSize(s)
		if err != nil || n < min {
			return 0, fmt.Errorf("%w: %q", ErrBadValue, s)
		}
		return n, nil
	}
}
