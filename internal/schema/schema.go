// Package schema implements pgschema: dump, filter, apply, roles and diff of PostgreSQL schemas, parsed not grepped.
package schema

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/cliutil"
)

const tool = "pgschema"

// Main runs pgschema with the process's standard streams and returns the exit code.
func Main(args []string) int { return Run(args, os.Stdin, os.Stdout, os.Stderr) }

// Run runs pgschema with the given streams and returns the exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return cliutil.RunApp(NewApp(stdin, stdout, stderr), args)
}

// NewApp builds the pgschema command line.
func NewApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  tool,
		Usage: "dump, filter, apply and compare PostgreSQL schemas for a pgferry migration",
		Description: `pgschema understands what pg_dump prints: it splits statements with a real SQL lexer
(dollar quotes, strings, quoted identifiers, comments, psql meta-commands) and sorts them by
pg_dump's per-object headers, so function bodies and multi-line triggers survive intact and
pgferry's own capture objects never reach the target.

Example (one migration):
   pgschema roles --source $SRC | psql $DST
   pgschema dump --source $SRC --section pre-data | pgschema apply --target $DST
   pgschema dump --source $SRC --section indexes | pgschema apply --target $DST -j 4
   pgschema dump --source $SRC --section constraints --not-valid | pgschema apply --target $DST
   pgschema dump --source $SRC --section triggers | pgschema apply --target $DST
   pgschema diff --source $SRC --target $DST`,
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*cli.Command{
			dumpCommand(),
			filterCommand(),
			applyCommand(),
			rolesCommand(),
			diffCommand(),
			ownersCommand(),
		},
	}
	for _, cmd := range app.Commands {
		action := cmd.Action
		cmd.Action = func(c *cli.Context) error { return present(action(c)) }
	}
	return app
}

// present gives the logic's typed errors their exit code and the hint saying what to do.
func present(err error) error {
	var se *Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Fix {
	case FixIncomplete:
		return cliutil.WithHint(cliutil.ExitFailure, err, "the input is not complete pg_dump SQL output; check that the dump was not truncated or edited")
	case FixTruncated:
		return cliutil.WithHint(cliutil.ExitFailure, err, "the dump looks truncated; dump it again")
	case FixEmpty:
		return cliutil.WithHint(cliutil.ExitFailure, err, "pipe the output of 'pg_dump --schema-only' (or 'pgschema dump') into this command")
	case FixEdited:
		return cliutil.WithHint(cliutil.ExitFailure, err, "the dump was edited by hand; fix the header comment or the statement so they agree")
	case FixInstallPgDump:
		return cliutil.WithHint(cliutil.ExitUsage, err, "install the PostgreSQL client tools or point --pg-dump (PGFERRY_PG_DUMP) at pg_dump")
	case FixPgDumpTooOld:
		return cliutil.WithHint(cliutil.ExitUsage, err, fmt.Sprintf("install pg_dump %s or newer (e.g. postgresql-client-%s) and point --pg-dump (PGFERRY_PG_DUMP) at it", se.Need, se.Need))
	case FixPgDumpRights:
		return cliutil.WithHint(cliutil.ExitFailure, err, "pg_dump needs to read every schema object; run it as the owner of the objects or a role with pg_read_all_data")
	}
	return err
}

// usageErr marks err as a usage error (exit 2).
func usageErr(err error) error { return cliutil.WithCode(cliutil.ExitUsage, err) }

// readScript reads a dump from stdin (refusing a terminal) and parses it.
func readScript(c *cli.Context) (*Script, error) {
	src, err := readAll(c)
	if err != nil {
		return nil, err
	}
	return Parse(src)
}

// readAll reads stdin, refusing a terminal.
func readAll(c *cli.Context) ([]byte, error) {
	if cliutil.IsTerminal(c.App.Reader) {
		return nil, cliutil.WithHint(cliutil.ExitUsage, errors.New("no input: stdin is a terminal"),
			"pipe a schema into it, e.g. 'pg_dump --schema-only DB | pgschema "+c.Command.Name+" ...'")
	}
	return io.ReadAll(c.App.Reader)
}

func filterCommand() *cli.Command {
	return &cli.Command{
		Name:      "filter",
		Usage:     "filter a plain-format pg_dump --schema-only script from stdin",
		UsageText: "pgschema filter [--section S] [--not-valid] [filters] < dump.sql > out.sql",
		Description: `Applies the same selection as 'pgschema dump' to a dump made elsewhere. SET statements and
psql meta-commands (\restrict, \connect) are always kept. Bad input (an unterminated quote or
comment, binary data, empty input) is an error naming the line.

Example:
   pg_dump --schema-only app > app.sql
   pgschema filter --section indexes --exclude-table 'audit_*' < app.sql > indexes.sql`,
		Flags: filterFlags(),
		Action: func(c *cli.Context) error {
			o, err := optionsFromCLI(c)
			if err != nil {
				return err
			}
			sc, err := readScript(c)
			if err != nil {
				return err
			}
			return FilterScript(sc, o, c.App.Writer)
		},
	}
}
