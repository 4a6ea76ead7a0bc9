package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "55P03"}, true},
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "42P01"}, false},
		{fmt.Errorf("copy chunk: %w", io.ErrUnexpectedEOF), true},
		{errors.New("syntax"), false},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestDoRetriesTransientOnly(t *testing.T) {
	p := Policy{Attempts: 3, Base: time.Millisecond}
	n := 0
	err := p.Do(context.Background(), func(context.Context) error { n++; return &pgconn.PgError{Code: "57P01"} })
	if n != 3 || err == nil {
		t.Fatalf("transient: %d tries, err %v; want 3 tries and an error", n, err)
	}
	n = 0
	err = p.Do(context.Background(), func(context.Context) error { n++; return &pgconn.PgError{Code: "23505"} })
	if n != 1 || err == nil {
		t.Fatalf("permanent: %d tries; want 1", n)
	}
	n = 0
	err = p.Do(context.Background(), func(context.Context) error {
		n++
		if n < 2 {
			return io.ErrUnexpectedEOF
		}
		return nil
	})
	if n != 2 || err != nil {
		t.Fatalf("recovering: %d tries, err %v", n, err)
	}
}

// TestDoRetryableJitterGaveUp: a policy's own Retryable decides what is tried again, waits double
// up to Max with at most Jitter added, and running out says how many tries were made.
func TestDoRetryableJitterGaveUp(t *testing.T) {
	busy := errors.New("busy")
	var waits []time.Duration
	p := Policy{Attempts: 4, Base: 2 * time.Millisecond, Max: 5 * time.Millisecond, Jitter: 0.5,
		Retryable: func(err error) bool { return errors.Is(err, busy) },
		OnRetry:   func(_ int, _ error, wait time.Duration) { waits = append(waits, wait) }}
	err := p.Do(context.Background(), func(context.Context) error { return busy })
	var gu *GaveUpError
	if !errors.As(err, &gu) || gu.Attempts != 4 || !errors.Is(err, busy) || err.Error() != "gave up after 4 attempts: busy" {
		t.Fatalf("got %v, want gave up after 4 attempts wrapping busy", err)
	}
	for i, lo := range []time.Duration{2, 4, 5} {
		lo *= time.Millisecond
		if waits[i] < lo || waits[i] > lo+lo/2 {
			t.Errorf("wait %d = %s, want %s..%s", i+1, waits[i], lo, lo+lo/2)
		}
	}
	n := 0 // a transient error the policy does not call retryable is not retried
	err = p.Do(context.Background(), func(context.Context) error { n++; return io.ErrUnexpectedEOF })
	if n != 1 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("not retryable: %d tries, err %v", n, err)
	}
}
