package dbconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// DefaultNetTimeout bounds how long a copy connection may wait on a silent server before it is
// taken for lost (a half-open connection: a load balancer or NAT that forgot it, a peer that
// vanished) and its chunk retried. See docs/runbook.md, "Network faults".
const DefaultNetTimeout = 60 * time.Second

// NetTimeoutEnv is the environment variable of the --net-timeout flag.
const NetTimeoutEnv = "PGFERRY_NET_TIMEOUT"

// ErrNetTimeout is the cause of a connection given up by the network timeout.
var ErrNetTimeout = errors.New("network timeout")

// netDialer dials with TCP keepalives and, when timeout > 0, TCP_USER_TIMEOUT (unacknowledged
// data for that long closes the socket: the kernel's half of the bound) and a progress watchdog
// on the connection (the application's half: see watchConn).
func netDialer(connect, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{
		Timeout: connect,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 6,
		},
	}
	if timeout <= 0 {
		return d.DialContext
	}
	d.Control = func(network, _ string, rc syscall.RawConn) error {
		if network != "tcp" && network != "tcp4" && network != "tcp6" {
			return nil
		}
		var serr error
		err := rc.Control(func(fd uintptr) { serr = setUserTimeout(fd, timeout) })
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
		return newWatchConn(c, timeout), nil
	}
}

// watchConn fails a Read once neither a read nor a write has moved a byte for timeout. Writes
// count as progress so a long COPY FROM, during which pgconn keeps a read pending and the server
// says nothing, is not cut. Deadlines pgconn sets itself (to interrupt a cancelled query) win
// when they come first.
type watchConn struct {
	net.Conn
	timeout time.Duration

	mu   sync.Mutex
	last time.Time // last byte read or written
	ext  time.Time // read deadline set by the caller
}

func newWatchConn(c net.Conn, timeout time.Duration) *watchConn {
	return &watchConn{Conn: c, timeout: timeout, last: time.Now()}
}

func (c *watchConn) touch() {
	c.mu.Lock()
	c.last = time.Now()
	c.mu.Unlock()
}

// deadline is the read deadline now and whether it is the caller's own.
func (c *watchConn) deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.last.Add(c.timeout)
	if !c.ext.IsZero() && c.ext.Before(d) {
		return c.ext, true
	}
	return d, false
}

func (c *watchConn) Read(p []byte) (int, error) {
	for {
		d, own := c.deadline()
		if err := c.Conn.SetReadDeadline(d); err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(p)
		if n > 0 {
			c.touch()
		}
		if err == nil || own || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if next, _ := c.deadline(); next.After(time.Now()) {
			continue // a write moved bytes meanwhile: the connection is alive
		}
		return n, fmt.Errorf("%w: no byte moved on the connection for %s (half-open?): %w", ErrNetTimeout, c.timeout, err)
	}
}

func (c *watchConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *watchConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.ext = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *watchConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.ext = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// ParseNetTimeout reads a --net-timeout value: a duration, 0 turning the bound off.
func ParseNetTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad --net-timeout %q: want a duration such as 60s, or 0 for none", s)
	}
	return d, nil
}

// NetTimeoutFlag is the --net-timeout flag of the copy tools.
func NetTimeoutFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:    "net-timeout",
		Value:   DefaultNetTimeout.String(),
		Usage:   "a copy connection on which no byte moves for this long while a reply is awaited is taken for lost (half-open) and its chunk retried; 0 waits forever",
		EnvVars: []string{NetTimeoutEnv},
	}
}
