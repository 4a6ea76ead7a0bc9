package dbconn

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// probeFunc asks the server about backend pid of a connection silent for silent (while writing,
// or awaiting a reply): nil if the backend is at work, else an error wrapping ErrNetTimeout.
type probeFunc func(pid uint32, silent time.Duration, write bool) error

// NetTimeoutError is a connection given up by the network timeout: why, and what became of its
// backend. It is a net.Error timeout, so retry.Transient takes it for a lost connection.
type NetTimeoutError struct {
	Silent     time.Duration
	Write      bool   // a write did not go through (else a reply did not come)
	Verdict    string // what the probe found
	Terminated bool   // the probe ended the orphaned backend
}

func (e *NetTimeoutError) Error() string {
	what := "no reply came"
	if e.Write {
		what = "the server took no data"
	}
	msg := fmt.Sprintf("%s: %s for %s (half-open connection?): %s", ErrNetTimeout, what, e.Silent, e.Verdict)
	if e.Terminated {
		msg += "; its session was ended so that its locks go"
	}
	return msg + "; raise --net-timeout (" + NetTimeoutEnv + ") if the network is only slow"
}

func (e *NetTimeoutError) Unwrap() error { return ErrNetTimeout }
func (e *NetTimeoutError) Timeout() bool { return true }

// Temporary is part of net.Error.
func (e *NetTimeoutError) Temporary() bool { return true }

// activitySQL reads what a backend of the probe's own role is doing (a role sees the state of
// its own backends without any privilege).
const activitySQL = `SELECT coalesce(state, ''), coalesce(wait_event_type, ''), coalesce(wait_event, '') FROM pg_catalog.pg_stat_activity WHERE pid = $1`

// newProber returns the probe of connections made with cfg: a side connection with cfg's
// address, credentials and TLS but no watchdog, bounded by probeTimeout(timeout) in all.
func newProber(cfg *pgconn.Config, timeout time.Duration) probeFunc {
	pc := cfg.Copy()
	limit := probeTimeout(timeout)
	pc.ConnectTimeout = limit
	pc.DialFunc = plainDialer(limit).DialContext
	pc.AfterConnect, pc.ValidateConnect, pc.OnNotice, pc.OnNotification = nil, nil, nil, nil
	pc.RuntimeParams = map[string]string{"application_name": "pgferry-probe"}
	return func(pid uint32, silent time.Duration, write bool) error {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		e := &NetTimeoutError{Silent: silent, Write: write}
		conn, err := pgconn.ConnectConfig(ctx, pc)
		if err != nil {
			e.Verdict = fmt.Sprintf("a new connection to the server failed too (%v)", redactErr(err))
			return e
		}
		defer conn.Close(context.Background())
		p := []byte(strconv.FormatUint(uint64(pid), 10))
		res := conn.ExecParams(ctx, activitySQL, [][]byte{p}, nil, nil, nil).Read()
		if res.Err != nil {
			e.Verdict = fmt.Sprintf("asking the server about backend %d failed (%v)", pid, res.Err)
			return e
		}
		if len(res.Rows) == 0 {
			e.Verdict = fmt.Sprintf("the server has no backend %d any more", pid)
			return e
		}
		state, wtype, wait := string(res.Rows[0][0]), string(res.Rows[0][1]), string(res.Rows[0][2])
		if e.Verdict = backendVerdict(pid, state, wtype, wait); e.Verdict == "" {
			return nil
		}
		res = conn.ExecParams(ctx, "SELECT pg_catalog.pg_terminate_backend($1)", [][]byte{p}, nil, nil, nil).Read()
		e.Terminated = res.Err == nil && len(res.Rows) == 1 && string(res.Rows[0][0]) == "t"
		return e
	}
}

// backendVerdict is "" for a backend at work on our request (running it, or waiting on a lock
// or I/O), else why the connection is lost.
func backendVerdict(pid uint32, state, waitType, wait string) string {
	switch {
	case state == "active" && waitType == "Client":
		return fmt.Sprintf("backend %d is waiting on the network too (%s): the bytes between us are lost", pid, wait)
	case state == "active", state == "fastpath function call":
		return ""
	case state == "":
		return fmt.Sprintf("the server does not show what backend %d is doing (track_activities off?)", pid)
	}
	return fmt.Sprintf("backend %d is %s: the request or its reply was lost", pid, state)
}
