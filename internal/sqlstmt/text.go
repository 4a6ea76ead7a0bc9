package sqlstmt

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pgferry/pgferry/internal/cliutil"
)

// CheckText rejects input that is plainly not SQL text, with a hint about what it is.
func CheckText(src []byte) error {
	if len(bytes.TrimSpace(src)) == 0 {
		return cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("read dump: line 1: the input is empty"),
			"pipe the output of 'pg_dump --schema-only' (or 'pgschema dump') into this command")
	}
	switch {
	case bytes.HasPrefix(src, []byte("PGDMP")):
		return cliutil.WithHint(cliutil.ExitFailure, errors.New("read dump: line 1: the input is a pg_dump custom or tar archive, not SQL"),
			"convert it with 'pg_restore --schema-only -f - archive.dump'")
	case bytes.HasPrefix(src, []byte{0x1f, 0x8b}):
		return cliutil.WithHint(cliutil.ExitFailure, errors.New("read dump: line 1: the input is gzip-compressed"), "decompress it first: 'gunzip -c dump.sql.gz | pgschema ...'")
	}
	head := src[:min(len(src), 8192)]
	ctl := 0
	for i, c := range head {
		if c == 0 {
			return cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("read dump: line %d: NUL byte: the input is binary, not SQL text", bytes.Count(src[:i], []byte("\n"))+1),
				"pipe the output of 'pg_dump --schema-only' (plain format) into this command")
		}
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != '\v' {
			ctl++
		}
	}
	if ctl > len(head)/100+2 {
		return cliutil.WithHint(cliutil.ExitFailure, errors.New("read dump: line 1: the input looks binary, not SQL text"),
			"pipe the output of 'pg_dump --schema-only' (plain format) into this command")
	}
	return nil
}
