package schema

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "compare the source's and the target's catalogs",
		UsageText: "pgschema diff --source URL --target URL [--section pre-data] [filters] [--json]",
		Description: `Compares what the catalogs say on both sides: schemas, tables (kind, partitioning),
columns (position, type, nullability, default, identity, generated, collation), indexes,
constraints (including NOT VALID), sequences (type and parameters, not values), views and
materialized views, functions and procedures, triggers, and extensions (by name and schema;
versions are shown but may differ). pgferry's own objects are ignored: the capture schema on
the source, the state schema on the target, and pgferry_* triggers. The filters compare what
'pgschema dump' with the same filters writes: a table's columns, indexes, constraints, triggers
and owned sequences follow the table (a partition its partitioned table), views and
materialized views are matched like tables, other objects by -n/-N.
Exit 0 when the schemas match, 1 with a list of differences.

Example:
   pgschema diff --source $SRC --target $DST
   pgschema diff --source $SRC --target $DST --json | jq '.differences[]'`,
		Flags: append([]cli.Flag{
			dbconn.Flag(dbconn.Source), dbconn.Flag(dbconn.Target), captureFlag(),
			cliutil.StateSchemaFlag("pgferry's state schema on the target, ignored"),
			&cli.BoolFlag{Name: "json", Usage: "write the result as JSON"},
			&cli.StringFlag{Name: "section", Value: "all", Usage: "all, or pre-data: leave out what pg_dump writes after the data (indexes, PRIMARY KEY, UNIQUE, EXCLUDE and FOREIGN KEY constraints, triggers), to check a target made with 'pgschema dump --section pre-data'"},
		}, catalog.FilterFlags()...),
		Action: func(c *cli.Context) error {
			f, err := catalog.FilterFromCLI(c)
			if err != nil {
				return usageErr(err)
			}
			if sec := c.String("section"); sec != "all" && sec != "pre-data" {
				return cliutil.Usagef("bad --section %q: want all or pre-data", sec)
			}
			ctx := c.Context
			src, dst, err := readCatalogs(ctx, dbconn.Resolve(c.String("source"), dbconn.Source), dbconn.Resolve(c.String("target"), dbconn.Target),
				c.String("capture-schema"), c.String("state-schema"), f)
			if err != nil {
				return err
			}
			if c.String("section") == "pre-data" {
				preDataOnly(src)
				preDataOnly(dst)
			}
			return writeDiff(c, src, Compare(src, dst))
		},
	}
}

// writeDiff prints the differences (or, with --json, the result) and fails when there are any.
func writeDiff(c *cli.Context, src Catalog, diffs []Difference) error {
	if c.Bool("json") {
		out := struct {
			Same        bool         `json:"same"`
			Objects     int          `json:"objects"`
			Differences []Difference `json:"differences"`
		}{len(diffs) == 0, src.count(), diffs}
		if out.Differences == nil {
			out.Differences = []Difference{}
		}
		if err := writeJSON(c.App.Writer, out); err != nil {
			return err
		}
	} else {
		for _, d := range diffs {
			fmt.Fprintln(c.App.Writer, d.String())
		}
	}
	if len(diffs) > 0 {
		return cliutil.WithCode(cliutil.ExitFailure, fmt.Errorf("%d differences between source and target schemas", len(diffs)))
	}
	if !c.Bool("json") {
		fmt.Fprintf(c.App.ErrWriter, "%s: schemas match (%d objects compared)\n", tool, src.count())
	}
	return nil
}
