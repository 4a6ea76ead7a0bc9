package applyplan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/pgver"
)

// BuildSettingsFlags are the flags for the session settings of a tool's index builds
// (pgschema apply, pgcopyin --indexes).
func BuildSettingsFlags(tool string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "parallel-workers", Value: "auto", EnvVars: []string{"PGFERRY_PARALLEL_WORKERS"},
			Usage: "max_parallel_maintenance_workers of each index connection: 'auto' divides the server's value by " + jobsFlag(tool) + " (left alone with 1), or a number >= 0"},
		&cli.StringFlag{Name: "maintenance-work-mem", EnvVars: []string{"PGFERRY_MAINTENANCE_WORK_MEM"},
			Usage: "maintenance_work_mem of each index connection, e.g. 1GB (memory per index build; default: the server's)"},
	}
}

// parallelWorkers is the parsed --parallel-workers: auto, or a fixed number.
type parallelWorkers struct {
	auto bool
	n    int
}

func parseParallelWorkers(s string) (parallelWorkers, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "auto") {
		return parallelWorkers{auto: true}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return parallelWorkers{}, cliutil.WithHint(cliutil.ExitUsage, fmt.Errorf("bad --parallel-workers %q: want 'auto' or a number >= 0", s),
			"'auto' gives each of the -j connections its share of the server's max_parallel_maintenance_workers; 0 turns parallel index builds off")
	}
	return parallelWorkers{n: n}, nil
}

// sessionSettings connects to the target once and works out the SET statements every apply
// connection runs before the script's own settings (so a SET in the script still wins):
// max_parallel_maintenance_workers (PostgreSQL 11+; older servers have no parallel index
// builds and are left alone) and maintenance_work_mem, which the server validates here, before
// any statement of the script runs. log gets a note on what was chosen.
func sessionSettings(ctx context.Context, url string, jobs int, pw parallelWorkers, workMem string, log io.Writer, tool string) ([]string, error) {
	workMem = strings.TrimSpace(workMem)
	if pw.auto && jobs == 1 && workMem == "" {
		return nil, nil // nothing to set: no connection needed
	}
	conn, err := dbconn.Connect(ctx, url, dbconn.Target, dbconn.Options{AppName: "pgferry-" + tool})
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	var sets []string
	version := pgver.Of(conn)
	if version.ParallelIndexBuild() {
		n := pw.n
		if pw.auto && jobs > 1 {
			var server int
			if err := conn.QueryRow(ctx, "SELECT current_setting('max_parallel_maintenance_workers')::int").Scan(&server); err != nil {
				return nil, fmt.Errorf("read max_parallel_maintenance_workers: %w", err)
			}
			n = server / jobs
			fmt.Fprintf(log, "%s: max_parallel_maintenance_workers = %d on each of %d connections (the server's %d divided by %s; --parallel-workers to choose)\n", tool, n, jobs, server, jobsFlag(tool))
		}
		if !pw.auto || jobs > 1 {
			sets = append(sets, fmt.Sprintf("SET max_parallel_maintenance_workers = %d", n))
		}
	} else if !pw.auto {
		fmt.Fprintf(log, "%s: note: the target (PostgreSQL %s) has no parallel index builds: --parallel-workers ignored\n", tool, version)
	}
	if workMem != "" {
		// set_config with a parameter lets the server judge the value without any quoting
		if _, err := conn.Exec(ctx, "SELECT pg_catalog.set_config('maintenance_work_mem', $1, false)", workMem); err != nil {
			var pe *pgconn.PgError
			if !errors.As(err, &pe) {
				return nil, fmt.Errorf("check --maintenance-work-mem: %w", err)
			}
			msg := pe.Message
			if pe.Hint != "" {
				msg += " (" + strings.TrimSuffix(pe.Hint, ".") + ")"
			}
			return nil, cliutil.WithHint(cliutil.ExitUsage, fmt.Errorf("bad --maintenance-work-mem %q: %s", workMem, msg),
				"give a size the server accepts, such as 512MB or 1GB; nothing was applied")
		}
		sets = append(sets, "SET maintenance_work_mem = '"+strings.ReplaceAll(workMem, "'", "''")+"'")
	}
	return sets, nil
}

// jobsFlag names the flag that sets a tool's number of index connections.
func jobsFlag(tool string) string {
	if tool == "pgcopyin" {
		return "--index-jobs"
	}
	return "-j"
}

// Configure sets the session settings of a plan that another tool runs with jobs connections
// (parallelWorkers is 'auto' or a number, workMem a size or empty: see pgschema apply --help);
// bad values are usage errors.
func (p *Plan) Configure(ctx context.Context, url string, jobs int, parallelWorkers, workMem string, log io.Writer) error {
	pw, err := parseParallelWorkers(parallelWorkers)
	if err != nil {
		return err
	}
	p.Settings, err = sessionSettings(ctx, url, jobs, pw, workMem, log, p.Tool)
	return err
}

// CheckParallelWorkers reports a bad --parallel-workers value as a usage error, so a tool can
// refuse it before reading its input.
func CheckParallelWorkers(s string) error {
	_, err := parseParallelWorkers(s)
	return err
}
