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
