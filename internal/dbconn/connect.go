package dbconn

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/pgver"
	"github.com/pgferry/pgferry/internal/retry"
)

// PinnedSettings are the session settings every pgferry session starts with: those under which
// every type's text form round-trips exactly; row_security off, so a policy can never filter what
// pgferry reads (PostgreSQL raises an error instead, as pg_dump relies on); and no timeouts, so
// settings that ALTER ROLE or ALTER DATABASE impose on the application cannot end the snapshot
// holder idling in its transaction for hours (startup settings override those). Tools set their
// own lock_timeout or statement_timeout through Options.Extra where they want one. jit off: the
// catalog queries (the drift check's recursive partition trees above all) are estimated past
// jit_above_cost, and compiling one took 0.6 s (up to 9 s on a loaded host) against its 20 ms
// run, in every catch-up batch and copy chunk (docs/benchmarks.md, "Cutover", run 7).
var PinnedSettings = map[string]string{
	"DateStyle":          "ISO",
	"IntervalStyle":      "postgres",
	"TimeZone":           "UTC",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"client_encoding":    "UTF8",
	"row_security":       "off",
	"statement_timeout":  "0",
	"lock_timeout":       "0",
	"jit":                "off",

	"idle_in_transaction_session_timeout": "0",
}

// versionedSettings are pinned like PinnedSettings on the servers that know them; an older server
// refuses an unknown setting at connection start, so they are SET once connected, and sent at
// connection start once the server's version is known (pinAtStartup).
var versionedSettings = []struct {
	name, value string
	since       func(pgver.Version) bool
}{
	{"idle_session_timeout", "0", pgver.Version.IdleSessionTimeout},
	{"transaction_timeout", "0", pgver.Version.TransactionTimeout},
}

// afterConnect sets versionedSettings on a new connection, by its server's version, unless its
// startup parameters (params: Options.Extra, pinAtStartup) carry them, and remembers that
// version for the next connection to key's server; on a watched connection it learns its
// backend's pid from the server itself (what pgconn reports is a pooler's, if one is in
// between), in the same round trip.
func afterConnect(params map[string]string, key string) func(context.Context, *pgconn.PgConn) error {
	return func(ctx context.Context, c *pgconn.PgConn) error {
		var sql []string
		if v, err := pgver.Parse(c.ParameterStatus("server_version")); err == nil { // else a proxy hides it: keep the server's settings
			serverVersions.Store(key, v)
			for _, s := range versionedSettings {
				if _, set := params[s.name]; !set && s.since(v) {
					sql = append(sql, "SET "+s.name+" = "+s.value)
				}
			}
		}
		w := watchedConn(c.Conn())
		if w != nil {
			sql = append(sql, "SELECT pg_catalog.pg_backend_pid()")
		}
		if len(sql) == 0 {
			return nil
		}
		res, err := c.Exec(ctx, strings.Join(sql, "; ")).ReadAll()
		if err != nil {
			return fmt.Errorf("pin session settings: %w", err)
		}
		if w != nil {
			w.pid.Store(c.PID())
			if last := res[len(res)-1]; len(last.Rows) == 1 {
				if pid, err := strconv.ParseUint(string(last.Rows[0][0]), 10, 32); err == nil {
					w.pid.Store(uint32(pid)) // what the watchdog's probe asks the server about
				}
			}
		}
		return nil
	}
}

// libpqOnly are connection-string parameters of libpq's TCP tuning that pgx does not know: a URL
// that carries them for psql and pg_dump (see docs/runbook.md, "Network faults") works with the
// tools too, which bound their connections themselves (--net-timeout).
var libpqOnly = []string{"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout"}

// Options tune a connection.
type Options struct {
	AppName string            // application_name shown in pg_stat_activity
	Extra   map[string]string // more runtime parameters (e.g. lock_timeout)
	// NetTimeout bounds a connection on which no byte moves while a reply is awaited or a write
	// is stuck (a watchdog, TCP_USER_TIMEOUT as a backstop): after that long the server is asked
	// on a side connection whether the backend still works on the statement (a long UPDATE, a
	// lock wait: the wait goes on) or not (the connection is failed with ErrNetTimeout and its
	// backend ended). 0 takes the process's --net-timeout (SetNetTimeout, DefaultNetTimeout
	// unless set); negative turns it off.
	NetTimeout time.Duration
}

// ParseConfig parses connString with pgferry's defaults: pinned settings, application_name,
// TCP keepalives, and a cancel request sent to the server when the context is cancelled.
func ParseConfig(connString string, opt Options) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, cliutil.WithHint(cliutil.ExitUsage, fmt.Errorf("parse connection string: %w", redactErr(err)),
			"use a URL such as postgres://user:pass@host:5432/db?sslmode=require")
	}
	for _, k := range libpqOnly {
		delete(cfg.RuntimeParams, k) // pgx would send them to the server, which refuses them
	}
	for k, v := range PinnedSettings {
		cfg.RuntimeParams[k] = v
	}
	if opt.AppName != "" {
		if _, set := cfg.RuntimeParams["application_name"]; !set || cfg.RuntimeParams["application_name"] == "" {
			cfg.RuntimeParams["application_name"] = opt.AppName
		}
	}
	for k, v := range opt.Extra {
		cfg.RuntimeParams[k] = v
	}
	pinAtStartup(cfg, opt.Extra)
	cfg.AfterConnect = afterConnect(cfg.RuntimeParams, serverKey(&cfg.Config))
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	timeout := effectiveNetTimeout(opt)
	cfg.DialFunc = netDialer(cfg.ConnectTimeout, timeout, newProber(&cfg.Config, timeout))
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: 0, DeadlineDelay: 5 * time.Second}
	}
	// Simple protocol is not used: extended protocol is fine everywhere pgferry runs.
	return cfg, nil
}

// connectRetry retries opening a connection that was reset or refused (a proxy dropping it, a
// server restarting) for a few seconds, or that the role's timeouts ended before the pinned
// settings arrived; an authentication failure is never retried.
var connectRetry = retry.Policy{Attempts: 4, Base: 250 * time.Millisecond, Max: 2 * time.Second,
	Retryable: func(err error) bool { return retry.Transient(err) || lostPinRace(err) }}

// Connect opens one connection; failures are usage/connection errors (exit 2) with a hint.
func Connect(ctx context.Context, connString string, r Role, opt Options) (*pgx.Conn, error) {
	cfg, err := ParseConfig(connString, opt)
	if err != nil {
		return nil, err
	}
	var conn *pgx.Conn
	err = connectRetry.Do(ctx, func(ctx context.Context) error {
		sent := pinAtStartup(cfg, opt.Extra) // what an attempt that lost the pin race learnt
		conn, err = pgx.ConnectConfig(ctx, cfg)
		if err != nil && sent && unknownSetting(err) { // an older server than the last one there
			serverVersions.Delete(serverKey(&cfg.Config))
			pinAtStartup(cfg, opt.Extra)
			conn, err = pgx.ConnectConfig(ctx, cfg)
		}
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		hint := fmt.Sprintf("check --%s (or %s) and that the server is reachable", r, r.EnvVar())
		if retry.AuthFailure(err) { // not retried: after a restart that rotated the credentials
			hint = fmt.Sprintf("the server refused the credentials (a restart may have rotated them): re-run with the new URL in --%s (or %s); what was done so far is kept and the re-run resumes", r, r.EnvVar())
		}
		return nil, cliutil.WithHint(cliutil.ExitUsage, fmt.Errorf("connect to %s: %w", r, redactErr(dropTLSRefusal(err))), hint)
	}
	return conn, nil
}

// dropTLSRefusal removes, from a connection error that lists several attempts, the attempts that
// failed only because the server refused TLS (sslmode=prefer tries TLS first, then plain): the
// plain attempt's error (a wrong password, a missing database) is what the operator must read;
// and an attempt's line said again word for word (a refused port, tried with and without TLS).
func dropTLSRefusal(err error) error {
	msg := err.Error()
	if !strings.Contains(msg, "\n") {
		return err
	}
	lines := strings.Split(msg, "\n")
	kept := lines[:1]
	for _, l := range lines[1:] {
		// sslmode=prefer tries an address twice (TLS, then plain): a refused port says it twice
		if !strings.Contains(l, "tls error: server refused TLS connection") && !slices.Contains(kept[1:], l) {
			kept = append(kept, l)
		}
	}
	if len(kept) == 1 || len(kept) == len(lines) {
		return err // nothing but refusals (say so), or nothing to drop
	}
	if len(kept) == 2 {
		return &redacted{msg: kept[0] + " " + strings.TrimSpace(kept[1]), err: err}
	}
	return &redacted{msg: strings.Join(kept, "\n"), err: err}
}

// redactErr hides passwords that pgx may echo back in connection errors.
func redactErr(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "password="); i >= 0 {
		j := strings.IndexAny(msg[i:], " )")
		if j < 0 {
			j = len(msg) - i
		}
		msg = msg[:i] + "password=xxxxx" + msg[i+j:]
	}
	return &redacted{msg: msg, err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
