// Package schema implements pgschema: dump, filter, apply, roles and diff of PostgreSQL schemas, parsed not grepped.
package schema

import (
	"errors"
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
		},
	}
	return app
}

// usageErr marks err as a usage error (exit 2).
func usageErr(err error) error { return cliutil.WithCode(cliutil.ExitUsage, err) }

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
			src, err := readAll(c)
			if err != nil {
				return err
			}
			sc, err := Parse(src)
			if err != nil {
				return err
			}
			return FilterScript(sc, o, c.App.Writer)
		},
	}
}
