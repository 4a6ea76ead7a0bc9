package cliutil

import (
	"errors"
	"io"
	"os"
)

// IsTerminal reports whether w is a character device such as a terminal.
func IsTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	return fi.Mode()&os.ModeCharDevice != 0
}

// RefuseTerminal returns a usage error when binary output would go to a terminal.
func RefuseTerminal(w io.Writer, what string) error {
	if IsTerminal(w) {
		return WithHint(ExitUsage, errors.New("refusing to write "+what+" to a terminal"), "pipe it into the next tool or redirect it to a file")
	}
	return nil
}
