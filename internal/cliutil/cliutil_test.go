package cliutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestReport(t *testing.T) {
	var b bytes.Buffer
	code := Report(&b, "pgx", WithHint(ExitUsage, errors.New("bad flag."), "try --help"))
	if code != 2 || b.String() != "pgx: bad flag\npgx: hint: try --help\n" {
		t.Fatalf("code %d, output %q", code, b.String())
	}
	b.Reset()
	if code := Report(&b, "pgx", fmt.Errorf("load: %w", context.Canceled)); code != 130 || !strings.Contains(b.String(), "interrupted") {
		t.Fatalf("cancel: code %d, %q", code, b.String())
	}
	if code := Report(&b, "pgx", errors.New("boom")); code != 1 {
		t.Fatalf("plain error: code %d", code)
	}
}

func TestRunAppUsageError(t *testing.T) {
	var errOut bytes.Buffer
	app := &cli.App{Name: "tool", ErrWriter: &errOut, Writer: &bytes.Buffer{}, Flags: []cli.Flag{&cli.IntFlag{Name: "jobs"}},
		Action: func(*cli.Context) error { return nil }}
	if code := RunApp(app, []string{"tool", "--nope"}); code != ExitUsage {
		t.Fatalf("unknown flag: code %d, stderr %q", code, errOut.String())
	}
	if !strings.HasPrefix(errOut.String(), "tool: ") {
		t.Fatalf("stderr %q not prefixed with the tool name", errOut.String())
	}
	errOut.Reset()
	app.Action = func(*cli.Context) error { return errors.New("copy failed") }
	if code := RunApp(app, []string{"tool"}); code != ExitFailure || errOut.String() != "tool: copy failed\n" {
		t.Fatalf("failure: code %d, stderr %q", code, errOut.String())
	}
}

func TestIsTerminal(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if IsTerminal(null) {
		t.Fatal("/dev/null taken for a terminal")
	}
	if IsTerminal(&bytes.Buffer{}) {
		t.Fatal("a buffer taken for a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) || RefuseTerminal(f, "data") != nil {
		t.Fatal("a regular file taken for a terminal")
	}
}
