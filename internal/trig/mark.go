package trig

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func markCommand() *cli.Command {
	return &cli.Command{
		Name:      "mark",
		Usage:     "record the current txid snapshot in the marks table (fork workflow); prints it",
		UsageText: "pgtrig mark --source URL",
		Description: `Writes txid_current_snapshot() into <capture-schema>.marks on the primary. Everything
visible in a mark committed before it, so the newest mark present in a fork is a safe
catch-up position for the primary ('pgdelta position --fork' looks for it). Run it just
before forking, or every minute from cron while a fork is being made:

   pgtrig mark --source "$SRC"`,
		Flags: []cli.Flag{dbconn.Flag(dbconn.Source), captureSchemaFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cliutil.Usagef("unexpected argument %q", c.Args().First())
			}
			ctx, cancel := cliutil.SignalContext()
			defer cancel()
			conn, err := connect(ctx, c, dbconn.Source)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			snap, err := capture.Mark(ctx, conn, c.String("capture-schema"))
			if err != nil {
				return err
			}
			fmt.Println(snap)
			return nil
		},
	}
}
