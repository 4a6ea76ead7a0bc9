package delta

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func sequencesCommand() *cli.Command {
	return &cli.Command{
		Name:      "sequences",
		Usage:     "set every target sequence (identity ones too) to the source's value plus --margin",
		UsageText: `pgdelta sequences --source URL --target URL [--margin N] [filters]`,
		Description: `Run at cutover, once the source is read-only. Prints each sequence and the value set.
The table filters select the sequences of the tables they select (serial and identity columns,
OWNED BY); a sequence no table owns is selected by -n/-N alone.

   pgdelta sequences --source "$SRC" --target "$DST" --margin 1000`,
		Flags: append([]cli.Flag{dbconn.Flag(dbconn.Source), dbconn.Flag(dbconn.Target), captureSchemaFlag(), stateSchemaFlag(),
			&cli.Int64Flag{Name: "margin", EnvVars: []string{"PGFERRY_MARGIN"}, Usage: "added to each source value, for writes that slip in during cutover"},
		}, catalog.FilterFlags()...),
		Action: func(c *cli.Context) error {
			f, err := catalog.FilterFromCLI(c)
			if err != nil {
				return cliutil.Usagef("%v", err)
			}
			if c.Int64("margin") < 0 {
				return cliutil.Usagef("--margin must not be negative")
			}
			ctx := c.Context
			src, dst, closeConns, err := connectBoth(ctx, c)
			if err != nil {
				return err
			}
			defer closeConns()
			res, err := SyncSequences(ctx, src, dst, f, []string{c.String("capture-schema"), c.String("state-schema")}, c.Int64("margin"), os.Stdout)
			if err == nil {
				logf("set %d sequences", len(res))
			}
			return err
		},
	}
}
