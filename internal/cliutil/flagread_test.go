package cliutil

import (
	"bytes"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestFlagReaderFirstRefusal: the first refused flag is the one reported, as a usage error
// naming it; a value read after it is not parsed.
func TestFlagReaderFirstRefusal(t *testing.T) {
	var got []int64
	var errOut bytes.Buffer
	app := &cli.App{Name: "tool", ErrWriter: &errOut,
		Flags: []cli.Flag{&cli.StringFlag{Name: "a", Value: "1kB"}, &cli.StringFlag{Name: "b", Value: "10"}, &cli.StringFlag{Name: "c"}},
		Action: func(c *cli.Context) error {
			r := NewFlagReader(c)
			got = append(got, ReadFlag(r, "a", SizeAtLeast(1)), ReadFlag(r, "b", SizeAtLeast(10)), ReadFlag(r, "c", ParseSize))
			return r.Err
		}}
	if code := RunApp(app, []string{"tool", "--b", "2", "--c", "nope"}); code != ExitUsage || got[0] != 1024 || got[2] != 0 ||
		!strings.HasPrefix(errOut.String(), "tool: bad --b \"2\"\n") {
		t.Fatalf("code %d, values %v, stderr %q", code, got, errOut.String())
	}
	errOut.Reset()
	got = nil
	if code := RunApp(app, []string{"tool", "--c", "3 parsecs"}); code != ExitUsage || !strings.Contains(errOut.String(), "bad size \"3 parsecs\"") {
		t.Fatalf("parser's own error: code %d, stderr %q", code, errOut.String())
	}
	got = nil
	if code := RunApp(app, []string{"tool", "--b", "1MB", "--c", "0"}); code != ExitOK || got[1] != 1<<20 {
		t.Fatalf("all good: code %d, values %v", code, got)
	}
}
