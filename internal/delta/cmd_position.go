package delta

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func positionCommand() *cli.Command {
	return &cli.Command{
		Name:      "position",
		Usage:     "print the position catch-up starts from",
		UsageText: `pgdelta position --target URL | pgdelta position --fork --source FORK_URL [--target URL]`,
		Description: `Prints the target's apply position; before any batch was applied, the copy's position (the
oldest of the snapshots its chunks were read under).

With --fork, the copy was taken from a physical copy (fork) of the source, whose snapshots are not
positions on the primary: pass the FORK as --source, and pgdelta prints the newest pgtrig mark
present in it (everything visible in it committed before the fork), else the capture start.
An applied position on --target, when given, still wins.

   pgdelta stream --source "$SRC" --from "$(pgdelta position --target "$DST")"
   pgdelta sync --source "$PRIMARY" --target "$DST" --from "$(pgdelta position --fork --source "$FORK")"`,
		Flags: []cli.Flag{dbconn.Flag(dbconn.Target), stateSchemaFlag(), dbconn.Flag(dbconn.Source), captureSchemaFlag(),
			&cli.BoolFlag{Name: "fork", Usage: "the copy came from a fork given as --source: print its newest mark (else its capture start)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say on stderr where the position comes from"},
		},
		Action: func(c *cli.Context) error {
			var pos catchup.Position
			if !c.Bool("fork") || c.IsSet("target") {
				p, err := readPosition(c, dbconn.Target, c.String("state-schema"), func(ctx context.Context, conn *pgx.Conn, schema string) (catchup.Position, error) {
					return catchup.TargetPosition(ctx, conn, schema)
				})
				if err != nil {
					return err
				}
				if !c.Bool("fork") || p.Origin == "apply" {
					pos = p
				}
			}
			if pos.Position == "" && c.Bool("fork") {
				p, err := readPosition(c, dbconn.Source, c.String("capture-schema"), catchup.ForkPosition)
				if err != nil {
					return err
				}
				pos = p
			}
			if pos.Position == "" {
				return noPosition(catchup.ErrNoPosition)
			}
			if c.Bool("verbose") {
				logf("position from %s", pos.Origin)
			}
			_, err := fmt.Println(pos.Position)
			return err
		},
	}
}

// readPosition connects to side r and reads a position there with read.
func readPosition(c *cli.Context, r dbconn.Role, schema string, read func(ctx context.Context, conn *pgx.Conn, schema string) (catchup.Position, error)) (catchup.Position, error) {
	ctx := c.Context
	conn, err := connector(c, r)(ctx)
	if err != nil {
		return catchup.Position{}, err
	}
	defer conn.Close(ctx)
	return read(ctx, conn, schema)
}
