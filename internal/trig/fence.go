package trig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
)

func fenceCommand() *cli.Command {
	return &cli.Command{
		Name:      "fence",
		Usage:     "close every captured table to writes for the cutover, prove it, lower it",
		UsageText: "pgtrig fence up|wait|down|status --source URL [options]",
		Description: `Every capture trigger function first checks the write fence, a sequence in the capture
schema: while it is up, every INSERT, UPDATE, DELETE and TRUNCATE of a captured table fails
with "write fence: the database is being moved" (SQLSTATE 25006), whoever the role, whatever
the session's settings or isolation level. pgferry's own tables are not fenced.

   pos=$(pgtrig fence up --source "$SRC")                 # prints the fence position
   pgtrig fence wait --source "$SRC" --position "$pos" --timeout 5m
   pgtrig fence down --source "$SRC"                       # SELECT setval('pgferry.fence', 1, false)

'wait' is the proof: it returns when every transaction in progress when the fence went up has
ended (prepared transactions included), so everything written before the fence is committed
or rolled back, and nothing after it can be. Run the fence commands as the role that ran
'pgtrig install'. Exit status: 0 done, 1 failed or timed out, 2 usage or connection error.`,
		Subcommands:     []*cli.Command{fenceUpCommand(), fenceWaitCommand(), fenceDownCommand(), fenceStatusCommand()},
		HideHelpCommand: true,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cliutil.WithHint(cliutil.ExitUsage, fmt.Errorf("unknown fence command %q", c.Args().First()), "use up, wait, down or status")
			}
			return cliutil.WithHint(cliutil.ExitUsage, errors.New("fence needs a command: up, wait, down or status"), "see 'pgtrig fence --help'")
		},
	}
}

func fenceFlags(more ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{dbconn.Flag(dbconn.Source), captureSchemaFlag()}, more...)
}

func jsonFlag(what string) cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print " + what + " as one JSON object"}
}

func printJSON(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

// printResult prints v as JSON with --json, else text on a line of its own.
func printResult(c *cli.Context, v any, text string) {
	if c.Bool("json") {
		printJSON(v)
	} else {
		fmt.Println(text)
	}
}

// fenceStep runs op on the source; on success say logs what it did and returns the line printed
// on stdout (with --json the result as JSON instead).
func fenceStep[T any](c *cli.Context, op func(ctx context.Context, conn *pgx.Conn) (T, error), say func(T) string) error {
	return onSource(c, func(ctx context.Context, conn *pgx.Conn) error {
		v, err := op(ctx, conn)
		if err != nil {
			return fenceError(err)
		}
		printResult(c, v, say(v))
		return nil
	})
}

// fenceError gives the fence's typed errors their hints.
func fenceError(err error) error {
	var nr *capture.FenceNotReadyError
	var to *capture.FenceTimeoutError
	var lo *capture.FenceLoweredError
	var bp *capture.BadPositionError
	switch {
	case errors.As(err, &bp):
		return cliutil.WithHint(cliutil.ExitUsage, err, "pass the position 'pgtrig fence up' printed")
	case errors.As(err, &nr):
		return cliutil.WithHint(cliutil.ExitFailure, err, "run 'pgtrig install' (with the filters of the first install): it upgrades the trigger functions in place, locking no table")
	case errors.As(err, &to):
		return cliutil.WithHint(cliutil.ExitFailure, err, "end those transactions (COMMIT PREPARED or ROLLBACK PREPARED 'gid' for prepared ones) and wait again, or give writes back with 'pgtrig fence down'")
	case errors.As(err, &lo):
		return cliutil.WithHint(cliutil.ExitFailure, err, "raise the fence again ('pgtrig fence up') and wait with its new position")
	}
	return err
}

func fenceUpCommand() *cli.Command {
	return &cli.Command{
		Name:      "up",
		Usage:     "raise the write fence; prints its position",
		UsageText: "pgtrig fence up --source URL [--json]",
		Description: `Refuses when a capture trigger function does not check the fence yet (an install made by
an older pgtrig: re-run 'pgtrig install'). Raising a fence that is up keeps it up. Prints the
fence position: a txid snapshot taken after the fence took effect, for 'pgtrig fence wait'.`,
		Flags: fenceFlags(jsonFlag("the fence (schema, position, since)")),
		Action: func(c *cli.Context) error {
			return fenceStep(c, func(ctx context.Context, conn *pgx.Conn) (*capture.Fence, error) {
				return capture.FenceUp(ctx, conn, c.String("capture-schema"))
			}, func(f *capture.Fence) string {
				logf("fence up in %s since %s: every write to a captured table fails now; prove it with 'pgtrig fence wait --position %s'",
					f.Schema, f.Since.Format(time.RFC3339), f.Position)
				return f.Position
			})
		},
	}
}

func fenceWaitCommand() *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Usage:     "wait until every transaction in progress when the fence went up has ended (the proof)",
		UsageText: "pgtrig fence wait --source URL --position SNAPSHOT [--timeout 5m] [--json]",
		Description: `Returns when txid_snapshot_xmin(txid_current_snapshot()) >= txid_snapshot_xmax(POSITION):
every transaction that could have got past a fence check has committed or rolled back. Lists on
stderr, at once and every 10s, the transactions it waits for: pid, role, state and age of
sessions (state and age only where this role may see them) and gid, owner and time of prepared
transactions. Fails when the fence is lowered during the wait, or after --timeout. Prints the
proving snapshot on stdout.`,
		Flags: fenceFlags(
			&cli.StringFlag{Name: "position", Required: true, Usage: "the position 'pgtrig fence up' printed"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "give up after this long (0: no limit)"},
			jsonFlag("the proof (position, proof, waited_s)")),
		Action: func(c *cli.Context) error {
			if c.Duration("timeout") < 0 {
				return cliutil.Usagef("--timeout must not be negative")
			}
			return fenceStep(c, func(ctx context.Context, conn *pgx.Conn) (*capture.FenceProof, error) {
				return capture.FenceWait(ctx, conn, capture.FenceWaitOptions{Schema: c.String("capture-schema"),
					Position: c.String("position"), Timeout: c.Duration("timeout"), Progress: os.Stderr})
			}, func(p *capture.FenceProof) string {
				logf("fence proven: every transaction in progress when it went up has ended (waited %.1fs for %d transaction(s))", p.Waited, p.WaitedFor)
				return p.Proof
			})
		},
	}
}

func fenceDownCommand() *cli.Command {
	return &cli.Command{
		Name:      "down",
		Usage:     "lower the write fence (one statement; lowering it twice is harmless)",
		UsageText: "pgtrig fence down --source URL",
		Flags:     fenceFlags(),
		Action: func(c *cli.Context) error {
			return onSource(c, func(ctx context.Context, conn *pgx.Conn) error {
				schema := c.String("capture-schema")
				was, err := capture.FenceDown(ctx, conn, schema)
				if err != nil {
					return err
				}
				if was {
					logf("fence down in %s: captured tables take writes again", schema)
				} else {
					logf("fence in %s was not up: nothing to lower", schema)
				}
				return nil
			})
		},
	}
}

func fenceStatusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show whether the fence is up and whether it would hold; exit 1 when it would not",
		UsageText: "pgtrig fence status --source URL [--json]",
		Flags:     fenceFlags(jsonFlag("the fence state")),
		Action: func(c *cli.Context) error {
			return onSource(c, func(ctx context.Context, conn *pgx.Conn) error {
				st, err := capture.GetFenceState(ctx, conn, c.String("capture-schema"))
				if err != nil {
					return err
				}
				if c.Bool("json") {
					printJSON(st)
				} else if st.Up {
					fmt.Printf("fence: up since %s\n", st.Since.Format(time.RFC3339))
				} else {
					fmt.Println("fence: down")
				}
				if st.Problem != "" {
					return fenceError(&capture.FenceNotReadyError{Op: "check write fence", State: st})
				}
				return nil
			})
		},
	}
}
