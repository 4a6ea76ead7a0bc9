package dbconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/cliutil"
)

// DefaultNetTimeout bounds how long a connection may wait on a silent server before the server is
// asked, on a side connection, whether the statement is still running; if it is not, the
// connection is taken for lost (a half-open connection: a load balancer or NAT that forgot it, a
// peer that vanished) and the unit in flight retried. See docs/runbook.md, "Network faults".
const DefaultNetTimeout = 60 * time.Second

// NetTimeoutEnv is the environment variable of the --net-timeout flag.
const NetTimeoutEnv = "PGFERRY_NET_TIMEOUT"

// ErrNetTimeout is the cause of a connection given up by the network timeout.
var ErrNetTimeout = errors.New("network timeout")

// processNetTimeout is --net-timeout of the running tool: the bound of connections whose
// Options.NetTimeout is 0. It is process-wide because every connection of a tool shares it and
// the tools open connections in many places; tests set Options.NetTimeout instead.
var processNetTimeout atomic.Int64

func init() { processNetTimeout.Store(int64(DefaultNetTimeout)) }

// SetNetTimeout sets the bound of the connections opened from now on with Options.NetTimeout 0;
// d <= 0 turns it off.
func SetNetTimeout(d time.Duration) { processNetTimeout.Store(int64(max(d, 0))) }

// effectiveNetTimeout is opt's bound: its own, else the process's; 0 means none.
func effectiveNetTimeout(opt Options) time.Duration {
	switch {
	case opt.NetTimeout < 0:
		return 0
	case opt.NetTimeout > 0:
		return opt.NetTimeout
	}
	return time.Duration(processNetTimeout.Load())
}

// ParseNetTimeout reads a --net-timeout value: a duration, 0 turning the bound off.
func ParseNetTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad --net-timeout %q: want a duration such as 60s, or 0 for none", s)
	}
	return d, nil
}

// NetTimeoutFlag is the --net-timeout flag (PGFERRY_NET_TIMEOUT) of every tool that talks to a
// server; setting it sets the bound of the tool's connections (SetNetTimeout).
func NetTimeoutFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:    "net-timeout",
		Value:   DefaultNetTimeout.String(),
		Usage:   "a connection on which no byte moves for this long while a reply is awaited (or a write is stuck) asks the server, on a side connection, whether its statement still runs; if not, the connection is taken for lost (half-open), its session ended and the work in flight retried; 0 waits forever",
		EnvVars: []string{NetTimeoutEnv},
		Action: func(_ *cli.Context, v string) error {
			d, err := ParseNetTimeout(v)
			if err != nil {
				return cliutil.WithCode(cliutil.ExitUsage, err)
			}
			SetNetTimeout(d)
			return nil
		},
	}
}

// AddNetTimeoutFlag gives --net-timeout to app and to each of its (sub)commands that takes
// --source or --target and has no --net-timeout yet: one call in each tool's Main.
func AddNetTimeoutFlag(app *cli.App) {
	if talksToServer(app.Flags) {
		app.Flags = append(app.Flags, NetTimeoutFlag())
	}
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			if talksToServer(cmd.Flags) {
				cmd.Flags = append(cmd.Flags, NetTimeoutFlag())
			}
			walk(cmd.Subcommands)
		}
	}
	walk(app.Commands)
}

// talksToServer reports whether flags has --source or --target but no --net-timeout.
func talksToServer(flags []cli.Flag) bool {
	server := false
	for _, f := range flags {
		for _, n := range f.Names() {
			switch n {
			case "net-timeout":
				return false
			case string(Source), string(Target):
				server = true
			}
		}
	}
	return server
}

// probeTimeout bounds the side connection that asks the server about a silent connection.
func probeTimeout(timeout time.Duration) time.Duration {
	return min(10*time.Second, max(timeout, time.Second))
}

// netDialer dials with TCP keepalives and, when timeout > 0, TCP_USER_TIMEOUT (data left
// unacknowledged well past the watchdog's bound closes the socket: the kernel's backstop) and a
// progress watchdog on the connection (see watchConn), which asks probe before giving up.
func netDialer(connect, timeout time.Duration, probe probeFunc) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := plainDialer(connect)
	if timeout <= 0 {
		return d.DialContext
	}
	user := timeout + probeTimeout(timeout) + 5*time.Second // the watchdog speaks first, and ends the backend
	d.Control = func(network, _ string, rc syscall.RawConn) error {
		if network != "tcp" && network != "tcp4" && network != "tcp6" {
			return nil
		}
		var serr error
		err := rc.Control(func(fd uintptr) { serr = setUserTimeout(fd, user) })
		if err != nil {
			return err
		}
		return serr
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newWatchConn(c, timeout, probe), nil
	}
}

// plainDialer dials with TCP keepalives only.
func plainDialer(connect time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout: connect,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 6,
		},
	}
}
