package trig

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/capture"
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
			return onSource(c, func(ctx context.Context, conn *pgx.Conn) error {
				snap, err := capture.Mark(ctx, conn, c.String("capture-schema"))
				if err != nil {
					return err
				}
				fmt.Println(snap)
				return nil
			})
		},
	}
}
