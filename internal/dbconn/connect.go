package dbconn

import (
	"context"
	"fmt"
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
// own lock_timeout or statement_timeout through Options.Extra where they want one.
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

	"idle_in_transaction_session_timeout": "0",
}

// versionedSettings are pinned like PinnedSettings on the servers that know them; an older server
// refuses an unknown setting at connection start, so they are SET once connected.
var versionedSettings = []struct {
	name, value string
	since       func(pgver.Version) bool
}{
	{"idle_session_timeout", "0", pgver.Version.IdleSessionTimeout},
	{"transaction_timeout", "0", pgver.Version.TransactionTimeout},
}

// pinVersioned sets versionedSettings on a new connection, by its server's version, unless
// Options.Extra sets them.
func pinVersioned(extra map[string]string) func(context.Context, *pgconn.PgConn) error {
	return func(ctx context.Context, c *pgconn.PgConn) error {
		v, err := pgver.Parse(c.ParameterStatus("server_version"))
		if err != nil {
			return nil // a proxy that hides the version: keep the server's settings
		}
		var sql []string
		for _, s := range versionedSettings {
			if _, set := extra[s.name]; !set && s.since(v) {
				sql = append(sql, "SET "+s.name+" = "+s.value)
			}
		}
		if len(sql) == 0 {
			return nil
		}
		if err := c.Exec(ctx, strings.Join(sql, "; ")).Close(); err != nil {
			return fmt.Errorf("pin session settings: %w", err)
		}
		return nil
	}
}

// Options tune a connection.
type Options struct {
	AppName string            // application_name shown in pg_stat_activity
	Extra   map[string]string // more runtime parameters (e.g. lock_timeout)
	// NetTimeout, when set, takes a connection on which no byte moved for that long while a
	// reply is awaited for lost (TCP_USER_TIMEOUT and a watchdog): only for connections whose
	// every statement streams (the copy's chunks), never one that runs long silent statements.
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
	cfg.AfterConnect = pinVersioned(opt.Extra)
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	cfg.DialFunc = netDialer(cfg.ConnectTimeout, opt.NetTimeout)
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: 0, DeadlineDelay: 5 * time.Second}
	}
	// Simple protocol is not used: extended protocol is fine everywhere pgferry runs.
	return cfg, nil
}

// connectRetry retries opening a connection that was reset or refused (a proxy dropping it, a
// server restarting) for a few seconds; an authentication failure is never retried.
var connectRetry = retry.Policy{Attempts: 4, Base: 250 * time.Millisecond, Max: 2 * time.Second}

// Connect opens one connection; failures are usage/connection errors (exit 2) with a hint.
func Connect(ctx context.Context, connString string, r Role, opt Options) (*pgx.Conn, error) {
	cfg, err := ParseConfig(connString, opt)
	if err != nil {
		return nil, err
	}
	var conn *pgx.Conn
	err = connectRetry.Do(ctx, func(ctx context.Context) error {
		conn, err = pgx.ConnectConfig(ctx, cfg)
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
// plain attempt's error (a wrong password, a missing database) is what the operator must read.
func dropTLSRefusal(err error) error {
	msg := err.Error()
	if !strings.Contains(msg, "\n") || !strings.Contains(msg, "server refused TLS connection") {
		return err
	}
	lines := strings.Split(msg, "\n")
	kept := lines[:1]
	for _, l := range lines[1:] {
		if !strings.Contains(l, "tls error: server refused TLS connection") {
			kept = append(kept, l)
		}
	}
	if len(kept) == 1 {
		return err // nothing but refusals: say so
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
