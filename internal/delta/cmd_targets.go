package delta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func targetsCommand() *cli.Command {
	return &cli.Command{
		Name:      "targets",
		Usage:     "list the targets registered on the source (pruning waits for each), or forget one",
		UsageText: `pgdelta targets --source URL [--json] [--forget TARGET_ID | --register --target URL]`,
		Description: `Every target that follows the source is registered there (by 'pgcopyout --target', 'pgdelta sync'
and 'pgdelta prune') with the position it has confirmed, and the source's delta tables are pruned
only up to the oldest of them. A target that was abandoned keeps that position, so the delta
tables grow until it is forgotten; a target that is still following registers itself again.

A copy that does not name its target (pgcopyout -o DIR, to load one or several targets later)
registers nothing: register each target with --register before that copy starts, or another
target's pruning may remove changes its catch-up needs (its 'pgdelta sync' then refuses to start).

   pgdelta targets --source "$SRC"
   pgdelta targets --source "$SRC" --forget 3f9c...            # a target that will never sync again
   pgdelta targets --source "$SRC" --register --target "$DST2"  # before pgcopyout -o DIR`,
		Flags: []cli.Flag{dbconn.Flag(dbconn.Source), captureSchemaFlag(), dbconn.Flag(dbconn.Target), stateSchemaFlag(),
			&cli.StringFlag{Name: "forget", EnvVars: []string{"PGFERRY_FORGET"}, Usage: "remove the registration with this target id (from the list)"},
			&cli.BoolFlag{Name: "register", EnvVars: []string{"PGFERRY_REGISTER"}, Usage: "register --target at the source's current position (before a copy that does not name it)"},
			&cli.BoolFlag{Name: "json", EnvVars: []string{"PGFERRY_JSON"}, Usage: "print one JSON object"},
		},
		Action: func(c *cli.Context) error {
			ctx := c.Context
			if c.Bool("register") {
				return registerCommand(ctx, c)
			}
			src, err := connector(c, dbconn.Source)(ctx)
			if err != nil {
				return err
			}
			defer src.Close(ctx)
			if id := c.String("forget"); id != "" {
				ok, err := catchup.ForgetTarget(ctx, src, c.String("capture-schema"), id)
				if err == nil && !ok {
					err = cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("forget target: no target %q is registered", id), "list them with pgdelta targets --source URL")
				}
				if err == nil {
					logf("forgot target %s: pruning no longer waits for it", id)
				}
				return err
			}
			regs, horizon, err := catchup.ListTargets(ctx, src, c.String("capture-schema"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if regs == nil {
					regs = []catchup.Registration{}
				}
				b, _ := json.Marshal(map[string]any{"targets": regs, "prune_horizon": horizon})
				fmt.Println(string(b))
				return nil
			}
			fmt.Printf("prune horizon: %s\n", orNone(horizon))
			for _, r := range regs {
				fmt.Printf("%s  %s  position %s  confirmed %s ago\n", r.ID, r.Where, r.Position, time.Since(r.UpdatedAt).Round(time.Second))
			}
			return nil
		},
	}
}

func orNone(s string) string {
	if s == "" {
		return "(nothing pruned yet)"
	}
	return s
}

// registerCommand is 'pgdelta targets --register': the target is registered at the source's
// current position, as pgcopyout --target does before its snapshot.
func registerCommand(ctx context.Context, c *cli.Context) error {
	if c.String("forget") != "" {
		return cliutil.Usagef("--register and --forget exclude each other")
	}
	src, dst, closeConns, err := connectBoth(ctx, c)
	if err != nil {
		return err
	}
	defer closeConns()
	pos, err := catchup.RegisterCopyTarget(ctx, src, dst, c.String("capture-schema"), c.String("state-schema"), urlOf(c, dbconn.Target), "pgdelta", os.Stderr)
	if err != nil {
		return err
	}
	if pos == "" {
		return cliutil.WithHint(cliutil.ExitFailure, errors.New("register target: the source has no capture installed, or may not be written"), "install capture first (pgtrig install)")
	}
	logf("registered the target at %s: pruning keeps every change after it until the target confirms more", pos)
	return nil
}
