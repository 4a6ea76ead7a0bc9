package delta

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show how far the target lags behind the source; exit 1 when not caught up",
		UsageText: `pgdelta status --source URL --target URL [--json]`,
		Description: `Counts the captured changes the target has not applied yet, the lag in seconds, the apply
rate and the last error. Exits 0 when caught up and 1 otherwise, so scripts can wait:

   until pgdelta status --source "$SRC" --target "$DST" >/dev/null; do sleep 1; done`,
		Flags: []cli.Flag{dbconn.Flag(dbconn.Source), dbconn.Flag(dbconn.Target), captureSchemaFlag(), stateSchemaFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print the status as one JSON object"},
		},
		Action: func(c *cli.Context) error {
			ctx, cancel := cliutil.SignalContext()
			defer cancel()
			src, dst, closeConns, err := connectBoth(ctx, c)
			if err != nil {
				return err
			}
			defer closeConns()
			st, err := ReadStatus(ctx, src, dst, c.String("capture-schema"), c.String("state-schema"))
			if err != nil {
				return noPosition(err)
			}
			if c.Bool("json") {
				b, _ := json.Marshal(st)
				fmt.Println(string(b))
			} else {
				fmt.Printf("position:      %s (%s)\nkeys waiting:  %d in %d tables, %d truncates\nlag:           %.1f s\napply rate:    %.0f rows/s\napplied:       %d batches, %d rows\n",
					st.Position, st.Origin, st.KeysWaiting, st.TablesWaiting, st.TruncWaiting, st.LagSeconds, st.RowsPerSec, st.Batches, st.Rows)
				fmt.Printf("targets:       %d registered on the source (pruning waits for each; see pgdelta targets)\n", st.Targets)
				if st.LastError != "" {
					fmt.Printf("last error:    %s\n", st.LastError)
				}
				fmt.Printf("caught up:     %v\n", st.CaughtUp)
			}
			if st.PrunedPast != "" {
				return cliutil.WithHint(cliutil.ExitFailure, errors.New("this target lost changes: "+st.LastError), PrunedHint)
			}
			if !st.CaughtUp {
				return cliutil.WithCode(cliutil.ExitFailure, errors.New("not caught up"))
			}
			_ = os.Stdout.Sync()
			return nil
		},
	}
}
