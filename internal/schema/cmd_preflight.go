package schema

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func preflightCommand() *cli.Command {
	return &cli.Command{
		Name:      "preflight",
		Usage:     "list what the source's schema holds that the target's role cannot create, before anything changes",
		UsageText: "pgschema preflight --source URL --target URL [--exclude-type TYPE]... [--json]",
		Description: `Reads both catalogs (nothing is changed on either side) and writes one line per object the
schema step would fail on, with its remedy ("error"), and per object the migration leaves
behind ("warning"):
  - extensions neither installed on the target nor creatable by its role: a superuser, a
    managed service's administrator role (rds_superuser on RDS and Aurora, azure_pg_admin,
    cloudsqlsuperuser, alloydbsuperuser) may create any extension the server offers; others
    only trusted ones (PostgreSQL 13+) with CREATE on the database;
  - event triggers, and publications of all tables or of whole schemas: superuser only;
  - subscriptions of the source database (warnings: they are not migrated).
Object types left out with --exclude-type (PGFERRY_EXCLUDE_TYPE, as for 'pgschema dump') are
not checked. Exit 0 when nothing blocks (warnings only), 1 when something does, 2 when a server
cannot be reached.

Example:
   pgschema preflight --source "$SRC" --target "$DST" || echo "fix the above first"`,
		Flags: []cli.Flag{dbconn.Flag(dbconn.Source), dbconn.Flag(dbconn.Target),
			&cli.StringSliceFlag{Name: "exclude-type", EnvVars: []string{"PGFERRY_EXCLUDE_TYPE"}, Usage: "object types the schema leaves out (pg_dump's names: 'EVENT TRIGGER', PUBLICATION, EXTENSION), not checked"},
			&cli.BoolFlag{Name: "json", Usage: "write the findings as one JSON object (docs/json.md)"}},
		Action: func(c *cli.Context) error {
			src, err := connectFlag(c, dbconn.Source)
			if err != nil {
				return err
			}
			defer src.Close(context.Background())
			dst, err := connectFlag(c, dbconn.Target)
			if err != nil {
				return err
			}
			defer dst.Close(context.Background())
			found, err := Preflight(c.Context, src, dst, PreflightOptions{ExcludeTypes: c.StringSlice("exclude-type")})
			if err != nil {
				return err
			}
			return writeFindings(c, found)
		},
	}
}

// writeFindings writes the findings (text lines or JSON) and fails with exit 1 if one blocks.
func writeFindings(c *cli.Context, found []Finding) error {
	doc := struct {
		Blocking int       `json:"blocking"`
		Findings []Finding `json:"findings"`
	}{Findings: []Finding{}}
	for _, f := range found {
		if f.Severity == "error" {
			doc.Blocking++
		}
		doc.Findings = append(doc.Findings, f)
	}
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, doc); err != nil {
			return err
		}
	} else {
		for _, f := range found {
			if _, err := fmt.Fprintf(c.App.Writer, "%s: %s\n", f.Severity, f); err != nil {
				return err
			}
		}
	}
	if doc.Blocking > 0 {
		return cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("%d object(s) of the source cannot be created on the target by its role", doc.Blocking),
			"apply the remedies above, then re-run; nothing was changed on either side")
	}
	return nil
}
