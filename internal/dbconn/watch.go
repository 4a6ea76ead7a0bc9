package dbconn

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// watchConn bounds how long a read awaiting a reply, or a write the peer does not take, may wait
// with no byte moving on the connection. Any byte read or written counts as progress, so a long
// COPY FROM, during which pgconn keeps a read pending and the server says nothing, is not cut;
// the wait counts from the start of the read or write too, so a reader that paused (a slow
// consumer downstream) is not blamed for it. When the bound passes, probe asks the server, on a
// side connection, whether the backend is still at work (a long statement, a lock wait): then
// the wait is extended by another timeout; otherwise the connection is failed with ErrNetTimeout
// and closed. Deadlines pgconn sets itself (to interrupt a cancelled query) win when they come
// first.
type watchConn struct {
	net.Conn
	timeout time.Duration
	probe   probeFunc     // nil: fail at once
	pid     atomic.Uint32 // backend pid, once connected (watchPID)

	mu     sync.Mutex
	last   time.Time // last byte read or written
	extR   time.Time // read deadline set by the caller
	extW   time.Time // write deadline set by the caller
	failed error     // set once the connection is given up

	probeMu  sync.Mutex // one probe at a time; a concurrent read and write share its verdict
	probedAt time.Time  // when the last probe found the backend at work
}

// probes counts the watchdog's probes, for tests: a long statement must have been asked about.
var probes atomic.Int64

func newWatchConn(c net.Conn, timeout time.Duration, probe probeFunc) *watchConn {
	return &watchConn{Conn: c, timeout: timeout, probe: probe, last: time.Now()}
}

func (c *watchConn) touch() {
	c.mu.Lock()
	c.last = time.Now()
	c.mu.Unlock()
}

// deadline is the deadline now of an operation waiting since start with the caller's deadline
// ext, and whether it is the caller's own.
func (c *watchConn) deadline(start time.Time, write bool) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ext := c.extR
	if write {
		ext = c.extW
	}
	d := c.last
	if start.After(d) {
		d = start
	}
	d = d.Add(c.timeout)
	if !ext.IsZero() && !ext.After(d) {
		return ext, true
	}
	return d, false
}

func (c *watchConn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

func (c *watchConn) Read(p []byte) (int, error) {
	return c.watch(p, false, c.Conn.SetReadDeadline, c.Conn.Read)
}

// Write writes all of p unless the connection fails: a write cut by the watchdog's deadline and
// found alive goes on with the rest.
func (c *watchConn) Write(p []byte) (int, error) {
	done := 0
	for {
		n, err := c.watch(p[done:], true, c.Conn.SetWriteDeadline, c.Conn.Write)
		done += n
		if err != nil || done >= len(p) {
			return done, err
		}
	}
}

// watch runs one read or write under the watchdog: op is retried after a deadline the watchdog
// set if bytes moved meanwhile or the probe found the backend at work.
func (c *watchConn) watch(p []byte, write bool, setDeadline func(time.Time) error, op func([]byte) (int, error)) (int, error) {
	start := time.Now()
	for {
		if err := c.failure(); err != nil {
			return 0, err
		}
		d, _ := c.deadline(start, write)
		if err := setDeadline(d); err != nil {
			return 0, err
		}
		n, err := op(p)
		if n > 0 {
			c.touch()
		}
		if _, own := c.deadline(start, write); n > 0 && write && !own && errors.Is(err, os.ErrDeadlineExceeded) {
			return n, nil // part went: Write goes on with the rest under a new deadline
		}
		if err == nil || n > 0 {
			return n, err
		}
		if ferr := c.failure(); ferr != nil {
			return 0, ferr // given up by the other direction's watchdog meanwhile
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, err
		}
		next, own := c.deadline(start, write)
		if own && !next.After(time.Now()) {
			return 0, err // the caller's deadline
		}
		if next.After(time.Now()) {
			continue // bytes moved meanwhile (or the caller moved its deadline): alive
		}
		if perr := c.check(write, start); perr != nil {
			return 0, perr
		}
		start = time.Now() // the backend is at work: wait another timeout
	}
}

// check asks the server whether the backend is still at work after a wait since since; it
// returns nil if so, else fails and closes the connection with an ErrNetTimeout error.
func (c *watchConn) check(write bool, since time.Time) error {
	c.probeMu.Lock()
	defer c.probeMu.Unlock()
	if err := c.failure(); err != nil {
		return err
	}
	if c.probedAt.After(since) {
		return nil // a probe during this wait found it at work
	}
	silent := time.Since(since).Round(time.Millisecond)
	probes.Add(1)
	var err error
	if pid := c.pid.Load(); c.probe == nil || pid == 0 {
		err = &NetTimeoutError{Silent: silent, Write: write, Verdict: "no backend to ask about (not connected yet)"}
	} else {
		err = c.probe(pid, silent, write)
	}
	if err == nil {
		c.probedAt = time.Now()
		return nil
	}
	c.mu.Lock()
	c.failed = err
	c.mu.Unlock()
	c.Conn.Close() // wakes the other direction
	return err
}

func (c *watchConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.extR, c.extW = t, t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *watchConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.extR = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *watchConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.extW = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

// watchedConn finds the watchConn beneath a connection pgconn uses (under TLS, if any).
func watchedConn(nc net.Conn) *watchConn {
	for nc != nil {
		if w, ok := nc.(*watchConn); ok {
			return w
		}
		u, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		nc = u.NetConn()
	}
	return nil
}
