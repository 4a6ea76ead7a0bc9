package copyout

import (
	"io"
	"os"

	"github.com/pgferry/pgferry/internal/cliutil"
)

// refuseTerminal is cliutil.RefuseTerminal except that /dev/null (also a character device) is
// accepted, so `pgcopyout > /dev/null` measures the read side.
func refuseTerminal(w io.Writer) error {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil {
			if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
				return nil
			}
		}
	}
	return cliutil.RefuseTerminal(w, "the copy stream")
}
