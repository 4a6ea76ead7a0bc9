package trig

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "preflight: what install would capture and what would block it; exit 1 when something blocks",
		UsageText: "pgtrig check --source URL [-n SCHEMA] [-t TABLE] [-T TABLE] [--exclude-table-data TABLE] [--long-tx 1m] [--json]",
		Description: `Lists, per selected table, the key capture will use (primary key, else a unique index over
NOT NULL columns; a table without one is captured as whole rows), its size and its write rate
(rows written per second since the statistics were reset, from pg_stat_user_tables). Then the
problems and notes: how a change to a table without a key is found and what it costs (a warning
when each batch must read the whole table), tables that cannot be captured at all (with the
remedies), missing privileges, tables whose row-level security policies apply to the role
(FORCEd, or not its own, without BYPASSRLS: the copy would fail), unlogged tables, sessions holding a lock on a selected
table in a transaction older than --long-tx, running anti-wraparound vacuums (they do not
yield, so install would time out), and long transactions. Exit 1 when an error blocks install.

   pgtrig check --source "$SRC" && pgtrig install --source "$SRC"`,
		Flags: append([]cli.Flag{dbconn.Flag(dbconn.Source), captureSchemaFlag(),
			&cli.DurationFlag{Name: "long-tx", Value: capture.DefaultLongTx, EnvVars: []string{"PGFERRY_LONG_TX"}, Usage: "a transaction open longer than this is reported"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as one JSON object"},
			&cli.BoolFlag{Name: "excluded", Usage: "check nothing: list the tables the filters leave out, one a line (with 'rows only' for --exclude-table-data), or with --json as one object {\"excluded\": [...]}"},
		}, catalog.FilterFlags()...),
		Action: func(c *cli.Context) error {
			f, err := catalog.FilterFromCLI(c)
			if err != nil {
				return cliutil.WithCode(cliutil.ExitUsage, err)
			}
			return onSource(c, func(ctx context.Context, conn *pgx.Conn) error {
				if c.Bool("excluded") {
					return listExcluded(ctx, c, conn, f)
				}
				return runCheck(ctx, c, conn, f)
			})
		},
	}
}

// runCheck prints the capture check report and fails when something blocks install.
func runCheck(ctx context.Context, c *cli.Context, conn *pgx.Conn, f catalog.Filter) error {
	rep, err := capture.Check(ctx, conn, capture.CheckOptions{Schema: c.String("capture-schema"), Filter: f, LongTx: c.Duration("long-tx")})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		b, _ := json.Marshal(rep)
		fmt.Println(string(b))
	} else {
		printCheck(os.Stdout, rep)
	}
	if rep.Blocking > 0 {
		return cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("%d problem(s) block install", rep.Blocking), "fix the errors listed above (each has a remedy), then run 'pgtrig check' again")
	}
	return nil
}

// listExcluded prints the tables the filters leave out, or whose rows they leave out.
func listExcluded(ctx context.Context, c *cli.Context, conn *pgx.Conn, f catalog.Filter) error {
	all, err := catalog.ListTables(ctx, conn, c.String("capture-schema"))
	if err != nil {
		return err
	}
	if f, err = f.Resolve(all); err != nil {
		return err
	}
	ex := f.Excluded(all)
	if c.Bool("json") {
		if ex == nil {
			ex = []catalog.Excluded{}
		}
		b, _ := json.Marshal(map[string]any{"excluded": ex})
		fmt.Println(string(b))
		return nil
	}
	for _, e := range ex {
		if e.RowsOnly {
			fmt.Printf("%s\trows only\n", e.Table)
		} else {
			fmt.Println(e.Table)
		}
	}
	return nil
}

func printCheck(w io.Writer, rep *capture.CheckReport) {
	fmt.Fprintf(w, "server %s, role %s (superuser: %v), capture schema present: %v\n\n", rep.Server, rep.Role, rep.Superuser, rep.SchemaExists)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tKEY\tKEY SOURCE\tROWS\tSIZE\tWRITES/S\tCAPTURED")
	for _, t := range rep.Tables {
		name := t.Table
		if t.Kind == "partitioned" {
			name += fmt.Sprintf(" (%d partitions)", t.Partitions)
		}
		key, src := strings.Join(t.Key, ", "), t.KeySource
		if key == "" {
			key, src = "-", "none: "+capture.KeylessSource
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%.2f\t%v\n", name, key, src, t.EstRows, bytesText(t.Bytes), t.WritesPerSec, t.Captured)
	}
	tw.Flush()
	if n := len(rep.Excluded); n > 0 {
		rows := 0
		for _, e := range rep.Excluded {
			if e.RowsOnly {
				rows++
			}
		}
		fmt.Fprintf(w, "\nleft out by the filters: %d table(s), %d of them only their rows; 'pgtrig check --excluded' lists them\n", n, rows)
	}
	if len(rep.Problems) == 0 {
		fmt.Fprintln(w, "\nno problems found")
		return
	}
	fmt.Fprintln(w)
	for _, p := range rep.Problems {
		where := ""
		if p.Table != "" {
			where = p.Table + ": "
		}
		fmt.Fprintf(w, "%s: %s%s\n", strings.ToUpper(p.Severity), where, p.Message)
		if p.Remedy != "" {
			fmt.Fprintf(w, "  remedy: %s\n", p.Remedy)
		}
	}
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
