package schema

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func dumpCommand() *cli.Command {
	flags := append([]cli.Flag{
		dbconn.Flag(dbconn.Source),
		&cli.StringFlag{Name: "pg-dump", Value: "pg_dump", EnvVars: []string{"PGFERRY_PG_DUMP"}, Usage: "pg_dump binary to run; its major version must be at least the server's"},
		&cli.BoolFlag{Name: "capture-keys", EnvVars: []string{"PGFERRY_CAPTURE_KEYS"},
			Usage: "with --keys: count as keys also the indexes catch-up finds rows by (a keyless table's unique key, the indexes of tables captured whole), read from the source's capture schema"},
	}, filterFlags()...)
	return &cli.Command{
		Name:      "dump",
		Usage:     "run pg_dump --schema-only on the source and write the selected section",
		UsageText: "pgschema dump --source URL [--section pre-data|indexes|constraints|triggers|refresh|post-data|all] [--not-valid] [filters] > schema.sql",
		Description: `Runs pg_dump --schema-only (checking that its major version is at least the server's),
then filters the result like 'pgschema filter'. pgferry's capture schema and pgferry_* triggers
are always left out. '--section refresh' runs pg_dump --section=post-data instead (pg_dump writes
REFRESH MATERIALIZED VIEW only when it dumps data) and writes the refresh of every materialized
view populated on the source, in dependency order; a view with a unique index over plain columns
is refreshed CONCURRENTLY when it is already populated where the statement runs.

Example:
   pgschema dump --source postgres://app@old/app --section pre-data > pre.sql
   pgschema dump --source postgres://app@old/app --section constraints --not-valid > fks.sql
   pgschema dump --source postgres://app@old/app --section refresh | psql -X -v ON_ERROR_STOP=1 -d "$DST"`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			o, err := optionsFromCLI(c)
			if err != nil {
				return err
			}
			ctx := c.Context
			url := dbconn.Resolve(c.String("source"), dbconn.Source)
			if c.Bool("capture-keys") {
				if err := captureKeysFromSource(ctx, url, &o); err != nil {
					var nc *NoCaptureError
					if errors.As(err, &nc) {
						return cliutil.WithHint(cliutil.ExitFailure, err, "install capture first ('pgtrig install'), or leave out --capture-keys")
					}
					return err
				}
			}
			src, bootstrapPublic, err := PgDump(ctx, c.String("pg-dump"), url, dumpSections(o.Section)...)
			if err != nil {
				return err
			}
			sc, err := Parse(src)
			if err != nil {
				return err
			}
			if bootstrapPublic != "" {
				sc.DropOwner("SCHEMA", "public", bootstrapPublic)
			}
			return FilterScript(sc, o, c.App.Writer)
		},
	}
}
