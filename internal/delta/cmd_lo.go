package delta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/lobj"
	"github.com/pgferry/pgferry/internal/progress"
)

func loSyncCommand() *cli.Command {
	return &cli.Command{
		Name:      "lo-sync",
		Usage:     "make the target's large objects equal to the source's (same oids, data, owners, ACLs); --check only compares",
		UsageText: `pgdelta lo-sync --source URL --target URL [-j N] [--check] [--json] [--progress MODE]`,
		Description: `Large objects (pg_largeobject; what oid and lo columns point to) are not captured by triggers.
lo-sync lists them on both sides from pg_largeobject_metadata, hashes the objects both hold on
each server (in 1 MB pieces, so no object has to fit in memory), and then creates the missing
ones with the same oid, rewrites those whose data differs, unlinks those the source no longer
has, and sets owners and ACLs. Each object, or batch of small ones, is one target transaction:
an interrupted run leaves whole objects, and re-running converges.

The source role must be able to read every object (its owner, a member of the owner, or granted
SELECT ON LARGE OBJECT); otherwise nothing is written and the error names the objects. On the
target, giving an object to its owner needs membership in that role; an owner or grantee role
missing on the target is a warning (the object keeps the target role as owner).

Run it after the copy, and again in the cutover window (after the last delta batch): writes to
large objects are not fenced by the capture triggers, only by the source's read-only setting.

Exit codes: 0 equal (or made equal), 1 failed (--check: they differ), 2 usage or connection error.

   pgdelta lo-sync --source "$SRC" --target "$DST" -j 4
   pgdelta lo-sync --check --json`,
		Flags: []cli.Flag{dbconn.Flag(dbconn.Source), dbconn.Flag(dbconn.Target),
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 4, Usage: "connections per side", EnvVars: []string{"PGFERRY_JOBS"}},
			&cli.BoolFlag{Name: "check", Usage: "only compare: list the differing objects and exit 1 when there are any", EnvVars: []string{"PGFERRY_LO_CHECK"}},
			&cli.BoolFlag{Name: "json", Usage: "print the summary (or with --check the comparison) as one JSON object", EnvVars: []string{"PGFERRY_JSON"}},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress on stderr: auto (a line on a terminal), plain, json or none", EnvVars: []string{"PGFERRY_PROGRESS"}},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cliutil.Usagef("unexpected argument %q", c.Args().First())
			}
			if c.Int("jobs") < 1 {
				return cliutil.Usagef("bad -j %d: want at least 1", c.Int("jobs"))
			}
			pm, err := progress.ParseMode(c.String("progress"))
			if err != nil {
				return cliutil.WithCode(cliutil.ExitUsage, err)
			}
			ctx := c.Context
			cfg, err := loConfig(ctx, c)
			if err != nil {
				return err
			}
			if c.Bool("check") {
				return loCheck(ctx, cfg, c.Bool("json"), os.Stdout)
			}
			rep := progress.New(os.Stderr, pm, "pgdelta")
			cfg.Progress, cfg.Warnings = rep, prefixed{os.Stderr}
			rep.Start()
			sum, err := lobj.Sync(ctx, cfg)
			rep.Finish(err)
			if err != nil {
				return loError(err)
			}
			return printLoSummary(os.Stdout, sum, c.Bool("json"))
		},
	}
}

// loConfig checks both connections once (so a bad URL exits 2 before any work) and returns the
// engine's configuration, whose workers open their own.
func loConfig(ctx context.Context, c *cli.Context) (lobj.Config, error) {
	_, _, closeConns, err := connectBoth(ctx, c)
	if err != nil {
		return lobj.Config{}, err
	}
	closeConns()
	open := func(r dbconn.Role) func(context.Context) (*pgx.Conn, error) {
		url := urlOf(c, r)
		return func(ctx context.Context) (*pgx.Conn, error) {
			return dbconn.Connect(ctx, url, r, dbconn.Options{AppName: "pgferry-lo-sync"})
		}
	}
	return lobj.Config{Source: open(dbconn.Source), Target: open(dbconn.Target), Workers: c.Int("jobs")}, nil
}

// loError gives an unreadable source object the remedy as a hint.
func loError(err error) error {
	var ue *lobj.UnreadableError
	if errors.As(err, &ue) {
		return cliutil.WithHint(cliutil.ExitFailure, err, ue.Remedy())
	}
	return err
}

func printLoSummary(w io.Writer, s lobj.Summary, asJSON bool) error {
	if asJSON {
		b, _ := json.Marshal(s)
		_, err := fmt.Fprintln(w, string(b))
		return err
	}
	_, err := fmt.Fprintf(w, "large objects: %d on the source; %d created, %d rewritten, %d removed, %d owner/acl set; %s copied in %.1f s\n",
		s.Objects, s.Created, s.Rewritten, s.Removed, s.Metadata, mb(s.Bytes), s.ElapsedS)
	return err
}

// loCheck compares only: it lists the differing objects and fails when there are any.
func loCheck(ctx context.Context, cfg lobj.Config, asJSON bool, w io.Writer) error {
	cmp, err := lobj.Compare(ctx, cfg)
	if err != nil {
		return loError(err)
	}
	if asJSON {
		b, _ := json.Marshal(cmp)
		fmt.Fprintln(w, string(b))
	} else {
		fmt.Fprintf(w, "large objects: %d on the source (%s), %d on the target, %d differ\n",
			cmp.SourceObjects, mb(cmp.SourceBytes), cmp.TargetObjects, len(cmp.Diffs))
		for _, d := range cmp.Diffs {
			line := fmt.Sprintf("large object %d: %s", d.OID, d.Kind)
			if len(d.What) > 0 {
				line += " (" + strings.Join(d.What, ", ") + "): " + d.Note
			}
			fmt.Fprintln(w, line)
		}
	}
	if !cmp.Same() {
		return cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("%d large object(s) differ", len(cmp.Diffs)), "run pgdelta lo-sync (without --check) to copy them")
	}
	return nil
}

// prefixed writes each warning line with the tool's prefix.
type prefixed struct{ w io.Writer }

func (p prefixed) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, "pgdelta: "+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
