package delta

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show how far the target lags behind the source; exit 0 caught up, 1 not yet, 2 misconfigured",
		UsageText: `pgdelta status --source URL --target URL [--json]`,
		Description: `Counts the captured changes the target has not applied yet, the lag in seconds, the apply
rate and the last error. Before the first applied batch (the position comes from the copy) the
lag is unknown.

Exit codes, so scripts can wait and still stop on a mistake:
   0  caught up
   1  not caught up yet (wait and ask again)
   2  misconfigured or unreachable: bad flags, no connection, no position on the target (nothing
      loaded or applied), no capture schema on the source, or a target that lost changes to pruning

   until pgdelta status --source "$SRC" --target "$DST" >/dev/null; do
     [ $? -eq 1 ] || exit 2; sleep 1
   done`,
		Flags: []cli.Flag{dbconn.Flag(dbconn.Source), dbconn.Flag(dbconn.Target), captureSchemaFlag(), stateSchemaFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print the status as one JSON object"},
		},
		Action: func(c *cli.Context) error {
			ctx := c.Context
			src, dst, closeConns, err := connectBoth(ctx, c)
			if err != nil {
				return statusError(err)
			}
			defer closeConns()
			st, err := ReadStatus(ctx, src, dst, c.String("capture-schema"), c.String("state-schema"))
			if err != nil {
				return statusError(err)
			}
			if c.Bool("json") {
				b, _ := json.Marshal(st)
				fmt.Println(string(b))
			} else {
				fmt.Printf("position:      %s (%s)\nkeys waiting:  %d in %d tables, %d truncates\nlag:           %s\napply rate:    %.0f rows/s\napplied:       %d batches, %d rows\n",
					st.Position, st.Origin, st.KeysWaiting, st.TablesWaiting, st.TruncWaiting, lagText(st), st.RowsPerSec, st.Batches, st.Rows)
				fmt.Printf("targets:       %d registered on the source (pruning waits for each; see pgdelta targets)\n", st.Targets)
				if st.LastError != "" {
					fmt.Printf("last error:    %s\n", st.LastError)
				}
				fmt.Printf("caught up:     %v\n", st.CaughtUp)
			}
			if st.PrunedPast != "" {
				return cliutil.WithHint(cliutil.ExitUsage, errors.New("this target lost changes: "+st.LastError), catchup.PrunedHint)
			}
			if !st.CaughtUp {
				return cliutil.WithCode(cliutil.ExitFailure, errors.New("not caught up"))
			}
			_ = os.Stdout.Sync()
			return nil
		},
	}
}

// statusHint tells the operator how to give the target a position (status itself takes none).
const statusHint = "load the copy first (pgcopyout | pgcopyin records its position), or start 'pgdelta sync --from POSITION' (pgdelta position --fork, pgtrig install prints one); status exits 2 until the target has a position"

// statusError gives every failure of status exit 2 (misconfigured or unreachable), so a script
// waiting for exit 0 stops instead of spinning; exit 1 means only "not caught up yet".
func statusError(err error) error {
	if errors.Is(err, catchup.ErrNoPosition) {
		return cliutil.WithHint(cliutil.ExitUsage, err, statusHint)
	}
	var ee *cliutil.ExitError
	if errors.As(err, &ee) {
		return cliutil.WithHint(cliutil.ExitUsage, ee.Err, ee.Hint)
	}
	return cliutil.WithCode(cliutil.ExitUsage, err)
}

func lagText(st Status) string {
	if !st.LagKnown {
		return "unknown (nothing applied yet)"
	}
	return fmt.Sprintf("%.1f s", st.LagSeconds)
}
