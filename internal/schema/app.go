// Package schema implements pgschema: dump, filter, apply, roles and diff of PostgreSQL schemas, parsed not grepped.
package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
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
			preflightCommand(),
		},
	}
	for _, cmd := range app.Commands {
		action := cmd.Action
		cmd.Action = func(c *cli.Context) error { return present(action(c)) }
	}
	dbconn.AddNetTimeoutFlag(app)
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

// connectFlag connects to the server of the --source or --target flag (r), with its fallbacks.
func connectFlag(c *cli.Context, r dbconn.Role) (*pgx.Conn, error) {
	return dbconn.Connect(c.Context, dbconn.Resolve(c.String(string(r)), r), r, dbconn.Options{AppName: "pgferry-" + tool})
}

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
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

// filterFlags are the flags shared by dump and filter.
func filterFlags() []cli.Flag {
	fl := []cli.Flag{
		&cli.StringFlag{Name: "section", Value: "all", EnvVars: []string{"PGFERRY_SECTION"},
			Usage: "part of the schema to write: " + strings.Join(SectionNames, " | ") + " (indexes = indexes and PRIMARY KEY/UNIQUE/EXCLUDE; constraints = foreign keys and separate CHECKs; triggers = triggers, rules, event triggers, ENABLE ROW LEVEL SECURITY, policies; refresh = REFRESH MATERIALIZED VIEW)"},
		&cli.BoolFlag{Name: "not-valid", EnvVars: []string{"PGFERRY_NOT_VALID"}, Usage: "add foreign keys NOT VALID, then VALIDATE CONSTRAINT each at the end (validation does not block writes)"},
		&cli.StringSliceFlag{Name: "exclude-type", EnvVars: []string{"PGFERRY_EXCLUDE_TYPE"}, Usage: "leave out objects of this pg_dump type, e.g. 'TRIGGER', 'FK CONSTRAINT', 'PUBLICATION' (repeatable)"},
		&cli.StringFlag{Name: "keys", Value: "all", EnvVars: []string{"PGFERRY_KEYS"},
			Usage: "within the indexes section: all | primary (PRIMARY KEYs only: build them before catch-up) | secondary (the other indexes and UNIQUE/EXCLUDE constraints: after the first catch-up when chunks used several snapshots)"},
		&cli.StringFlag{Name: "validations", Value: "include", EnvVars: []string{"PGFERRY_VALIDATIONS"},
			Usage: "VALIDATE CONSTRAINT statements: include | omit (everything else) | only (just them, one a line, without settings: run them after the downtime)"},
		&cli.BoolFlag{Name: "no-owner", EnvVars: []string{"PGFERRY_NO_OWNER"}, Usage: "leave out ALTER ... OWNER TO"},
		&cli.BoolFlag{Name: "no-acl", EnvVars: []string{"PGFERRY_NO_ACL"}, Usage: "leave out GRANT and REVOKE"},
		&cli.BoolFlag{Name: "no-comments", EnvVars: []string{"PGFERRY_NO_COMMENTS"}, Usage: "leave out COMMENT ON"},
		captureFlag(),
	}
	return append(fl, catalog.FilterFlags()...)
}

func captureFlag() cli.Flag {
	return cliutil.CaptureSchemaFlag("pgferry's capture schema on the source; its objects and pgferry_* triggers are always left out")
}

func optionsFromCLI(c *cli.Context) (Options, error) {
	f, err := catalog.FilterFromCLI(c)
	if err != nil {
		return Options{}, usageErr(err)
	}
	o := Options{
		Section: c.String("section"), Filter: f, ExcludeTypes: c.StringSlice("exclude-type"),
		NoOwner: c.Bool("no-owner"), NoACL: c.Bool("no-acl"), NoComments: c.Bool("no-comments"),
		NotValid: c.Bool("not-valid"), CaptureSchema: c.String("capture-schema"), Warn: c.App.ErrWriter,
		Keys: c.String("keys"), Validations: c.String("validations"),
	}
	switch o.Keys {
	case "", "all", "primary", "secondary":
	default:
		return o, cliutil.Usagef("bad --keys %q: want all, primary or secondary", o.Keys)
	}
	switch o.Validations {
	case "", "include", "omit", "only":
	default:
		return o, cliutil.Usagef("bad --validations %q: want include, omit or only", o.Validations)
	}
	if _, err := sectionSet(o.Section); err != nil {
		return o, usageErr(err)
	}
	return o, nil
}
