package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/retry"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestAuthFailureNotRetried: a server that refuses the credentials (a role that may no longer log
// in, as after rotated credentials; a role that does not exist) is not a transient fault: the
// policy gives up at the first attempt and the message says to re-run with the new URL.
func TestAuthFailureNotRetried(t *testing.T) {
	db := pgtest.Source(t)
	role := "rotated_" + db.Name
	db.Exec(t, `CREATE ROLE "`+role+`" NOLOGIN`)
	t.Cleanup(func() { db.Cluster.Exec(context.Background(), "postgres", `DROP ROLE IF EXISTS "`+role+`"`) })
	for _, url := range []string{db.URLAs(role), db.URLAs("no_such_role_" + db.Name)} {
		attempts := 0
		pol := retry.Policy{Attempts: 5, Base: 200 * time.Millisecond}
		start := time.Now()
		err := pol.Do(context.Background(), func(ctx context.Context) error {
			attempts++
			c, err := dbconn.Connect(ctx, url, dbconn.Source, dbconn.Options{})
			if err == nil {
				c.Close(ctx)
			}
			return err
		})
		if err == nil {
			t.Fatalf("%s: connected", url)
		}
		if !retry.AuthFailure(err) || retry.Transient(err) {
			t.Errorf("%v: AuthFailure %v, Transient %v", err, retry.AuthFailure(err), retry.Transient(err))
		}
		if attempts != 1 || time.Since(start) > 5*time.Second {
			t.Errorf("an authentication failure was tried %d times (%s)", attempts, time.Since(start))
		}
		var ee *cliutil.ExitError
		if !errors.As(err, &ee) || ee.Code != cliutil.ExitUsage || !strings.Contains(ee.Hint, "re-run with the new URL in --source") {
			t.Errorf("want exit 2 and a hint to re-run with the new URL, got %#v", ee)
		}
	}
	if retry.AuthFailure(errors.New("connection reset by peer")) {
		t.Error("a reset is not an authentication failure")
	}
}

// TestPermanent: a unit marked permanent is never retried, even when its message says
// "connection reset" or it wraps a lost connection.
func TestPermanent(t *testing.T) {
	for _, err := range []error{retry.Permanent(io.ErrUnexpectedEOF), retry.Permanent(errors.New("read: connection reset by peer")),
		fmt.Errorf("copy: %w", retry.Permanent(io.EOF))} {
		if retry.Transient(err) {
			t.Errorf("Transient(%v) = true for a permanent error", err)
		}
		tries := 0
		retry.Policy{Attempts: 3}.Do(context.Background(), func(context.Context) error { tries++; return err })
		if tries != 1 {
			t.Errorf("%v tried %d times", err, tries)
		}
	}
	if !errors.Is(retry.Permanent(io.EOF), io.EOF) {
		t.Error("Permanent hides what it wraps")
	}
}
