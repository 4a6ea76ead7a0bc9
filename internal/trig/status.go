package trig

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show captured tables, rows waiting in each delta table, the oldest waiting change and sizes",
		UsageText: "pgtrig status --source URL [--json]",
		Description: `Reads the capture registry and every delta table. The oldest waiting change is shown as its
txid and its age in transactions. Exit 3 when a captured table's schema changed under the
capture (dropped or re-created, columns changed, a capture trigger dropped or disabled by
ALTER TABLE ... DISABLE TRIGGER, a partition detached), or when a table the installs' filters
select was created after them and is not captured ('pgtrig ignore' leaves such a table out): each
is named on stderr with the repair (docs/runbook.md). Exit 1 when a partition lacks the TRUNCATE trigger, or no capture is installed.

   pgtrig status --source "$SRC" --json | jq '.rows_waiting'`,
		Flags: []cli.Flag{dbconn.Flag(dbconn.Source), captureSchemaFlag(), &cli.BoolFlag{Name: "json", Usage: "print the status as one JSON object"}},
		Action: func(c *cli.Context) error {
			return onSource(c, func(ctx context.Context, conn *pgx.Conn) error {
				st, err := capture.GetStatus(ctx, conn, c.String("capture-schema"))
				if err != nil {
					return err
				}
				return reportStatus(c, st)
			})
		},
	}
}

// reportStatus prints st as a table or JSON; a missing or broken capture is an error (exit 1).
func reportStatus(c *cli.Context, st *capture.Status) error {
	broken := 0
	for _, t := range st.Tables {
		if t.TriggerMissing || t.TableMissing || t.PartitionsWithoutTruncate > 0 {
			broken++
		}
	}
	if c.Bool("json") {
		b, _ := json.Marshal(st)
		fmt.Println(string(b))
	} else if st.Installed {
		fmt.Printf("capture schema %s: %d table(s), %d row(s) waiting, %s, %d truncate(s) recorded\nposition: %s\n",
			st.Schema, len(st.Tables), st.Rows, bytesText(st.Bytes), st.Truncates, st.Position)
		if st.LastMark != "" {
			fmt.Printf("last mark: %s\n", st.LastMark)
		}
		fmt.Println()
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TABLE\tDELTA\tWAITING\tOLDEST TXID\tAGE (XIDS)\tSIZE\tSTATE")
		for _, t := range st.Tables {
			oldest, age := "-", "-"
			if t.OldestTxid != nil {
				oldest, age = fmt.Sprint(*t.OldestTxid), fmt.Sprint(t.OldestAge)
			}
			state := "ok"
			if t.TableMissing {
				state = "TABLE DROPPED OR RE-CREATED"
			} else if t.TriggerMissing {
				state = "TRIGGER MISSING"
			} else if t.PartitionsWithoutTruncate > 0 {
				state = fmt.Sprintf("%d NEW PARTITION(S) WITHOUT TRUNCATE CAPTURE", t.PartitionsWithoutTruncate)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", t.Table, t.DeltaTable, t.Rows, oldest, age, bytesText(t.Bytes), state)
		}
		tw.Flush()
	}
	if !st.Installed {
		return cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("no capture schema %s on the source", st.Schema), "run 'pgtrig install' first")
	}
	if err := capture.DriftFailure(st.Schema, st.Drifts); err != nil {
		return err
	}
	if broken > 0 {
		return cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("%d captured table(s) lost all or part of their capture", broken),
			"re-run 'pgtrig install'; for a dropped trigger, changes made meanwhile were not captured, so copy that table again")
	}
	return nil
}
