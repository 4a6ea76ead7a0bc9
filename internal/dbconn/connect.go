package dbconn

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/pgferry/pgferry/internal/cliutil"
)

// PinnedSettings are the session settings under which every type's text form round-trips exactly.
var PinnedSettings = map[string]string{
	"DateStyle":          "ISO",
	"IntervalStyle":      "postgres",
	"TimeZone":           "UTC",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"client_encoding":    "UTF8",
}

// Options tune a connection.
type Options struct {
	AppName string            // application_name shown in pg_stat_activity
	Extra   map[string]string // more runtime parameters (e.g. lock_timeout)
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
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	timeout := cfg.ConnectTimeout
	dialer := &net.Dialer{
		Timeout: timeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 6,
		},
	}
	cfg.DialFunc = dialer.DialContext
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: 0, DeadlineDelay: 5 * time.Second}
	}
	// Simple protocol is not used: extended protocol is fine everywhere pgferry runs.
	return cfg, nil
}

// Connect opens one connection; failures are usage/connection errors (exit 2) with a hint.
func Connect(ctx context.Context, connString string, r Role, opt Options) (*pgx.Conn, error) {
	cfg, err := ParseConfig(connString, opt)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, cliutil.WithHint(cliutil.ExitUsage, fmt.Errorf("connect to %s: %w", r, redactErr(err)),
			fmt.Sprintf("check --%s (or %s) and that the server is reachable", r, r.EnvVar()))
	}
	return conn, nil
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
