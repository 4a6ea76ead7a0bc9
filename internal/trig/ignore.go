package trig

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func ignoreCommand() *cli.Command {
	return &cli.Command{
		Name:      "ignore",
		Usage:     "leave the selected tables out of the migration for good (tables created after install that you do not want moved)",
		UsageText: "pgtrig ignore --source URL -t TABLE | -n SCHEMA [-N SCHEMA] [-T TABLE]",
		Description: `Records in the capture schema that the tables these filters select are not part of the
migration, also tables created later whose names match: pgdelta and 'pgtrig status' no longer
stop (exit 3) on them as new tables, and 'pgtrig install' does not capture them unless they are
captured already. It changes no table and copies nothing; records add up, and 'pgtrig remove'
drops them with the capture schema. Patterns need not match an existing table.

   pgtrig ignore --source "$SRC" -t public.scratch
   pgtrig ignore --source "$SRC" -t 'public.tmp_*'`,
		Flags: append([]cli.Flag{dbconn.Flag(dbconn.Source), captureSchemaFlag()}, catalog.FilterFlags()...),
		Action: func(c *cli.Context) error {
			f, err := catalog.FilterFromCLI(c)
			if err != nil {
				return cliutil.WithCode(cliutil.ExitUsage, err)
			}
			if len(f.Schemas)+len(f.Tables) == 0 {
				return cliutil.Usagef("give the tables to leave out with -t TABLE or -n SCHEMA")
			}
			if len(f.ExcludeTableData) > 0 {
				return cliutil.Usagef("--exclude-table-data does not apply to ignore: use -T to keep a table in the migration")
			}
			return onSource(c, func(ctx context.Context, conn *pgx.Conn) error {
				if err := capture.Ignore(ctx, conn, c.String("capture-schema"), f); err != nil {
					return err
				}
				logf("recorded: tables matching %s are left out of the migration", strings.Join(append(append([]string{}, f.Schemas...), f.Tables...), ", "))
				return nil
			})
		},
	}
}
