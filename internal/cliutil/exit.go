// Package cliutil holds what every pgferry binary shares: exit codes, error reporting and signals.
package cliutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Exit codes shared by every tool.
const (
	ExitOK      = 0 // success
	ExitFailure = 1 // the work failed (pgverify: differences found)
	ExitUsage   = 2 // bad flags, bad input to the command line, or no connection
)

// ExitError carries an exit code and an optional hint telling the operator what to do.
type ExitError struct {
	Code int
	Err  error
	Hint string
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Usagef returns an error that exits with ExitUsage.
func Usagef(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// WithHint attaches a hint and an exit code to err.
func WithHint(code int, err error, hint string) error {
	return &ExitError{Code: code, Err: err, Hint: hint}
}

// WithCode attaches an exit code to err.
func WithCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &ExitError{Code: code, Err: err}
}

// Report prints err as "tool: message" (and "tool: hint: ...") on w and returns the exit code.
func Report(w io.Writer, tool string, err error) int {
	if err == nil {
		return ExitOK
	}
	code := ExitFailure
	var ee *ExitError
	var hint string
	if errors.As(err, &ee) {
		code = ee.Code
		hint = ee.Hint
	}
	var ce cli.ExitCoder
	if errors.As(err, &ce) && ee == nil {
		code = ce.ExitCode()
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(w, "%s: interrupted; nothing half-written was committed, re-run to resume\n", tool)
		return 130
	}
	msg := strings.TrimSuffix(err.Error(), ".")
	if msg != "" {
		fmt.Fprintf(w, "%s: %s\n", tool, msg)
	}
	if hint != "" {
		fmt.Fprintf(w, "%s: hint: %s\n", tool, hint)
	}
	return code
}

// signalContext returns a context cancelled on SIGINT or SIGTERM; RunApp hands it to every action
// as c.Context, so no action sets up signals of its own.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Version is pgferry's release, set at build time with
// -ldflags "-X github.com/pgferry/pgferry/internal/cliutil.Version=v1.2.3"; otherwise the module
// version or VCS revision Go recorded, else "devel".
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && dirty {
			return "devel-" + rev + "-dirty"
		}
		if rev != "" {
			return "devel-" + rev
		}
	}
	return "devel"
}

// RunApp runs a urfave/cli app with pgferry's conventions: usage errors exit 2 with one line and a
// hint naming the (sub)command's help, never the help itself on stdout (where it would land in a
// pipe); runtime errors exit 1; messages on stderr prefixed with the tool name; --version; and
// deferred cleanup always runs. Every action gets one context, c.Context, cancelled on SIGINT or
// SIGTERM.
func RunApp(app *cli.App, args []string) int {
	app.ExitErrHandler = func(*cli.Context, error) {}
	if app.ErrWriter == nil {
		app.ErrWriter = os.Stderr
	}
	app.Version = version()
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version and exit"}
	cli.VersionPrinter = func(c *cli.Context) { fmt.Fprintf(c.App.Writer, "%s %s\n", c.App.Name, c.App.Version) }
	app.OnUsageError = func(c *cli.Context, err error, isSubcommand bool) error {
		return usageError(err, app.Name)
	}
	for _, cmd := range app.Commands {
		prepareCommand(cmd, app.Name+" "+cmd.Name)
	}
	app.EnableBashCompletion = false
	app.HideHelpCommand = true
	ctx, cancel := signalContext()
	defer cancel()
	stop := startProfile(app.Name)
	err := app.RunContext(ctx, args)
	stop()
	if err != nil && !errors.As(err, new(*ExitError)) && isCLIUsageError(err) {
		err = usageError(err, app.Name)
	}
	return Report(app.ErrWriter, app.Name, err)
}

// prepareCommand gives a subcommand pgferry's usage errors: one line, a hint naming its own help,
// and required flags checked by pgferry (urfave/cli prints the whole help to stdout for those).
func prepareCommand(cmd *cli.Command, path string) {
	cmd.OnUsageError = func(c *cli.Context, err error, isSubcommand bool) error { return usageError(err, path) }
	var required []string
	for _, f := range cmd.Flags {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Required {
			sf.Required = false
			required = append(required, sf.Name)
		}
	}
	if len(required) > 0 {
		before := cmd.Before
		cmd.Before = func(c *cli.Context) error {
			for _, name := range required {
				if !c.IsSet(name) {
					return &ExitError{Code: ExitUsage, Err: fmt.Errorf("--%s is required", name), Hint: "see '" + path + " --help'"}
				}
			}
			if before != nil {
				return before(c)
			}
			return nil
		}
	}
	for _, sub := range cmd.Subcommands {
		prepareCommand(sub, path+" "+sub.Name)
	}
}

var singleDashFlag = regexp.MustCompile(`(flag provided but not defined|flag needs an argument): -([A-Za-z0-9][A-Za-z0-9-]+)`)

// usageError is a command-line mistake as one line: a long flag is echoed as --name, as typed.
func usageError(err error, path string) error {
	msg := singleDashFlag.ReplaceAllString(err.Error(), "$1: --$2")
	return &ExitError{Code: ExitUsage, Err: errors.New(msg), Hint: "see '" + path + " --help'"}
}

// isCLIUsageError recognises the errors urfave/cli returns for bad flags and commands.
func isCLIUsageError(err error) bool {
	m := err.Error()
	for _, p := range []string{"flag provided but not defined", "Required flag", "Required flags", "invalid value", "No help topic", "flag needs an argument"} {
		if strings.Contains(m, p) {
			return true
		}
	}
	return false
}
