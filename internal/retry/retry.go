// Package retry redoes a unit of work after transient faults, with backoff, a bounded number of times.
package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Policy bounds retries.
type Policy struct {
	Attempts  int              // total tries, at least 1
	Base      time.Duration    // first backoff
	Max       time.Duration    // backoff ceiling
	Jitter    float64          // each wait grows by up to this fraction of itself, at random (0: none)
	Retryable func(error) bool // which errors are worth another try; nil: Transient
	OnRetry   func(attempt int, err error, wait time.Duration)
}

// Default is the policy for a copy chunk or delta batch.
var Default = Policy{Attempts: 5, Base: 500 * time.Millisecond, Max: 15 * time.Second}

// Do runs fn until it succeeds, fails with a permanent error, or attempts run out.
func (p Policy) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	if p.Attempts < 1 {
		p.Attempts = 1
	}
	retryable := p.Retryable
	if retryable == nil {
		retryable = Transient
	}
	wait := p.Base
	var err error
	for attempt := 1; ; attempt++ {
		err = fn(ctx)
		if err == nil || ctx.Err() != nil || !retryable(err) || attempt >= p.Attempts {
			if err != nil && attempt > 1 && retryable(err) && ctx.Err() == nil {
				return &GaveUpError{Attempts: attempt, Err: err}
			}
			return err
		}
		d := wait
		if p.Jitter > 0 {
			d += time.Duration(rand.Int64N(int64(float64(wait)*p.Jitter) + 1))
		}
		if p.OnRetry != nil {
			p.OnRetry(attempt, err, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		wait *= 2
		if p.Max > 0 && wait > p.Max {
			wait = p.Max
		}
	}
}

// GaveUpError is the last error of a unit that was still failing after every attempt.
type GaveUpError struct {
	Attempts int // tries made
	Err      error
}

func (e *GaveUpError) Error() string {
	return fmt.Sprintf("gave up after %d attempts: %v", e.Attempts, e.Err)
}
func (e *GaveUpError) Unwrap() error { return e.Err }

// Permanent marks err as never transient, whatever it wraps or says: a unit that cannot be
// redone (part of it already left for good) fails at once.
func Permanent(err error) error { return &permanentError{err: err} }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// AuthFailure reports whether err is the server refusing the credentials (SQLSTATE class 28:
// 28P01 wrong password, 28000 no such role, not permitted to log in, no pg_hba.conf entry), as
// after a restart that rotated them: retrying cannot help, a new URL is needed.
func AuthFailure(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "28")
	}
	return err != nil && (strings.Contains(err.Error(), "(SQLSTATE 28P01)") || strings.Contains(err.Error(), "(SQLSTATE 28000)"))
}

// Transient reports whether err is a lost connection, a server restart, a lock timeout,
// a deadlock or a serialization failure: faults after which redoing the unit is right.
func Transient(err error) bool {
	var perm *permanentError
	if err == nil || AuthFailure(err) || errors.As(err, &perm) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"): // connection exception
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // shutdown, crash, cannot connect now
			return true
		case pgErr.Code == "40001", pgErr.Code == "40P01", pgErr.Code == "55P03": // serialization, deadlock, lock timeout
			return true
		}
		return false
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe") || strings.Contains(msg, "unexpected EOF")
}
