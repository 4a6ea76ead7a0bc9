package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/ident"
)

// FenceWaitOptions tune FenceWait.
type FenceWaitOptions struct {
	Schema      string
	Position    string        // the position FenceUp returned
	Timeout     time.Duration // give up after this long; 0 waits until ctx ends
	Interval    time.Duration // between checks, default 200ms
	ReportEvery time.Duration // how often the transactions waited for are listed, default 10s
	Progress    io.Writer     // those lists, may be nil
}

// FenceProof is a proven fence: every transaction in progress when it went up has ended.
type FenceProof struct {
	Position string `json:"position"`
	// Proof is a snapshot whose xmin is at or above the position's xmax.
	Proof     string  `json:"proof"`
	Waited    float64 `json:"waited_s"`
	WaitedFor int     `json:"waited_for"` // transactions still running at the first check
}

// Blocker is a transaction the proof waits for: a session (fields hidden from a role that may
// not see the session's details are empty), a prepared transaction, or neither when not visible.
type Blocker struct {
	Txid        int64      `json:"txid"`
	Pid         int32      `json:"pid,omitempty"`
	Role        string     `json:"role,omitempty"`
	Database    string     `json:"database,omitempty"`
	Application string     `json:"application_name,omitempty"`
	State       string     `json:"state,omitempty"`
	XactSeconds *float64   `json:"xact_age_seconds,omitempty"` // null when the session's details are hidden
	XidAge      int32      `json:"xid_age,omitempty"`          // transactions started since it got its txid
	GID         string     `json:"gid,omitempty"`              // a prepared transaction's
	Owner       string     `json:"owner,omitempty"`
	Prepared    *time.Time `json:"prepared_at,omitempty"`
}

func (b Blocker) String() string {
	switch {
	case b.GID != "":
		return fmt.Sprintf("txid %d: prepared transaction gid %s, owner %s, database %s, prepared at %s",
			b.Txid, ident.Literal(b.GID), b.Owner, b.Database, b.Prepared.UTC().Format(time.RFC3339))
	case b.Pid != 0 && b.XactSeconds != nil:
		return fmt.Sprintf("txid %d: pid %d, role %s, database %s, application %q, %s, transaction open %.1fs",
			b.Txid, b.Pid, b.Role, b.Database, b.Application, b.State, *b.XactSeconds)
	case b.Pid != 0:
		return fmt.Sprintf("txid %d: pid %d, role %s, database %s, application %q, xid age %d (its state and time are hidden from this role)",
			b.Txid, b.Pid, b.Role, b.Database, b.Application, b.XidAge)
	}
	return fmt.Sprintf("txid %d: no session or prepared transaction shows it (it may be ending)", b.Txid)
}

// FenceTimeoutError is a proof that did not complete in time.
type FenceTimeoutError struct {
	Position string
	Timeout  time.Duration
	Blockers []Blocker
}

func (e *FenceTimeoutError) Error() string {
	var gids []string
	for _, b := range e.Blockers {
		if b.GID != "" {
			gids = append(gids, ident.Literal(b.GID))
		}
	}
	s := fmt.Sprintf("wait for write fence: %d transaction(s) in progress when the fence went up still running after %s",
		len(e.Blockers), e.Timeout)
	if len(gids) > 0 {
		s += ", prepared transaction(s) " + strings.Join(gids, ", ")
	}
	return s
}

// BadPositionError is a position that is not a txid snapshot's text form.
type BadPositionError struct {
	Position string
	Err      error
}

func (e *BadPositionError) Error() string {
	return fmt.Sprintf("read fence position %q: %v", e.Position, e.Err)
}

func (e *BadPositionError) Unwrap() error { return e.Err }

// checkPosition lets the server parse the position: its txid_snapshot input is the definition.
func checkPosition(ctx context.Context, conn *pgx.Conn, position string) error {
	var s string
	err := conn.QueryRow(ctx, "SELECT $1::text::txid_snapshot::text", position).Scan(&s)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "22P02" {
		return &BadPositionError{Position: position, Err: errors.New(pe.Message)}
	}
	if err != nil {
		return fmt.Errorf("read fence position: %w", err)
	}
	return nil
}

// FenceLoweredError is a fence lowered (or raised anew) during the wait: nothing is proven.
type FenceLoweredError struct{ Schema string }

func (e *FenceLoweredError) Error() string {
	return fmt.Sprintf("wait for write fence: the fence in %s was lowered during the wait, so nothing is proven", e.Schema)
}

// FenceWait proves a raised fence: it returns once every transaction in progress at the fence's
// position has ended, i.e. txid_snapshot_xmin(S) >= txid_snapshot_xmax(position) for a current
// snapshot S (docs/capture.md, "## The write fence", says why that is the condition). Every
// ReportEvery it lists the transactions it waits for on Progress; after Timeout it returns a
// *FenceTimeoutError naming them.
func FenceWait(ctx context.Context, conn *pgx.Conn, opt FenceWaitOptions) (*FenceProof, error) {
	opt.Schema = orDefault(opt.Schema)
	if opt.Interval <= 0 {
		opt.Interval = 200 * time.Millisecond
	}
	if opt.ReportEvery <= 0 {
		opt.ReportEvery = 10 * time.Second
	}
	if opt.Progress == nil {
		opt.Progress = io.Discard
	}
	if err := checkPosition(ctx, conn, opt.Position); err != nil {
		return nil, err
	}
	start := time.Now()
	var since int64
	var lastReport time.Time
	first := -1
	for {
		done, proof, err := fenceProven(ctx, conn, opt.Schema, opt.Position, &since)
		if err != nil {
			return nil, err
		}
		if done {
			return &FenceProof{Position: opt.Position, Proof: proof, Waited: time.Since(start).Seconds(), WaitedFor: max(first, 0)}, nil
		}
		timedOut := opt.Timeout > 0 && time.Since(start) >= opt.Timeout
		if timedOut || lastReport.IsZero() || time.Since(lastReport) >= opt.ReportEvery {
			bs, err := FenceBlockers(ctx, conn, opt.Position)
			if err != nil {
				return nil, err
			}
			if first < 0 {
				first = len(bs)
			}
			fmt.Fprintf(opt.Progress, "pgtrig: fence: after %.1fs still waiting for %d transaction(s) in progress when the fence went up (position %s):\n",
				time.Since(start).Seconds(), len(bs), opt.Position)
			for _, b := range bs {
				fmt.Fprintf(opt.Progress, "pgtrig:   %s\n", b)
			}
			lastReport = time.Now()
			if timedOut {
				return nil, &FenceTimeoutError{Position: opt.Position, Timeout: opt.Timeout, Blockers: bs}
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(opt.Interval):
		}
	}
}

// fenceProven checks the proof's condition in one statement, together with the fence itself:
// it must stay up, with the same value (*since, set on the first call), for the whole wait.
func fenceProven(ctx context.Context, conn *pgx.Conn, schema, position string, since *int64) (bool, string, error) {
	var done, up bool
	var proof string
	var ms int64
	err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT txid_snapshot_xmin(s) >= txid_snapshot_xmax($1::txid_snapshot), s::text, f.is_called, f.last_value
FROM txid_current_snapshot() s, %s.%s f`, ident.Quote(schema), ident.Quote(FenceSequence)), position).Scan(&done, &proof, &up, &ms)
	if err != nil {
		return false, "", fmt.Errorf("wait for write fence: %w", err)
	}
	if *since == 0 && up {
		*since = ms
	}
	if !up || ms != *since {
		return false, "", &FenceLoweredError{Schema: schema}
	}
	return done, proof, nil
}

// FenceBlockers lists the transactions in progress at position that are still running, with the
// session or prepared transaction each belongs to where this role can see it. pg_stat_activity
// shows every session's pid, role and txid to every role, its state and age only to members of
// the session's role (or pg_read_all_stats); pg_prepared_xacts shows everything to everyone.
func FenceBlockers(ctx context.Context, conn *pgx.Conn, position string) ([]Blocker, error) {
	rows, err := conn.Query(ctx, `SELECT w.x, coalesce(a.pid, 0), coalesce(a.usename::text, ''), coalesce(a.datname::text, p.database::text, ''),
  coalesce(a.application_name, ''), coalesce(a.state, ''), extract(epoch FROM clock_timestamp() - a.xact_start)::float8,
  coalesce(age(a.backend_xid), 0), coalesce(p.gid, ''), coalesce(p.owner::text, ''), p.prepared
FROM txid_snapshot_xip($1::txid_snapshot) w(x)
LEFT JOIN pg_stat_activity a ON a.backend_xid::text::bigint = w.x % 4294967296
LEFT JOIN pg_prepared_xacts p ON p.transaction::text::bigint = w.x % 4294967296
WHERE txid_status(w.x) = 'in progress'
ORDER BY w.x`, position)
	if err != nil {
		return nil, fmt.Errorf("list transactions the fence waits for: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Blocker, error) {
		var b Blocker
		err := r.Scan(&b.Txid, &b.Pid, &b.Role, &b.Database, &b.Application, &b.State, &b.XactSeconds, &b.XidAge, &b.GID, &b.Owner, &b.Prepared)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("list transactions the fence waits for: %w", err)
	}
	return out, nil
}
