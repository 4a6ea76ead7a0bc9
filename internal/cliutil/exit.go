// Package cliutil holds what every pgferry binary shares: exit codes, error reporting and signals.
package cliutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
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

// SignalContext returns a context cancelled on SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// RunApp runs a urfave/cli app with pgferry's conventions: usage errors exit 2, runtime errors 1,
// messages on stderr prefixed with the tool name, and deferred cleanup always runs.
func RunApp(app *cli.App, args []string) int {
	app.ExitErrHandler = func(*cli.Context, error) {}
	if app.ErrWriter == nil {
		app.ErrWriter = os.Stderr
	}
	app.OnUsageError = func(c *cli.Context, err error, isSubcommand bool) error {
		return &ExitError{Code: ExitUsage, Err: err, Hint: "see '" + app.Name + " --help'"}
	}
	app.EnableBashCompletion = false
	app.HideHelpCommand = true
	stop := startProfile(app.Name)
	err := app.Run(args)
	stop()
	if err != nil && !errors.As(err, new(*ExitError)) && isCLIUsageError(err) {
		err = &ExitError{Code: ExitUsage, Err: err, Hint: "see '" + app.Name + " --help'"}
	}
	return Report(app.ErrWriter, app.Name, err)
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
