package schema

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/ident"
)

func ownersCommand() *cli.Command {
	return &cli.Command{
		Name:      "owners",
		Usage:     "list the roles a schema script makes owners of objects in one schema",
		UsageText: "pgschema owners [--object-schema public] < pre-data.sql",
		Description: `Prints, one a line and quoted as identifiers, the roles that the script's ALTER ... OWNER TO
statements give objects of the schema to (by pg_dump's header of each object). migrate.sh grants
them CREATE on the target's public schema before applying the pre-data section.

Example:
   pgschema dump --source $SRC --section pre-data > pre.sql
   pgschema owners < pre.sql`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "object-schema", Value: "public", EnvVars: []string{"PGFERRY_OBJECT_SCHEMA"}, Usage: "the schema whose objects' owners to list"},
		},
		Action: func(c *cli.Context) error {
			sc, err := readScript(c)
			if err != nil {
				return err
			}
			return writeLines(c.App.Writer, Owners(sc, c.String("object-schema")))
		},
	}
}

// writeLines writes each name quoted as an identifier, one a line.
func writeLines(w io.Writer, names []string) error {
	for _, n := range names {
		if _, err := fmt.Fprintln(w, ident.Quote(n)); err != nil {
			return err
		}
	}
	return nil
}
