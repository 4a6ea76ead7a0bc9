package schema

import (
	"github.com/urfave/cli/v2"
)

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
