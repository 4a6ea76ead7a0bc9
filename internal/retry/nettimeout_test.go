package retry_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/retry"
)

// TestNetTimeoutIsTransient: a connection given up by the network timeout, however wrapped (pgx
// wraps it in its own timeout error, the tools in their context), is a lost connection: the unit
// in flight is redone.
func TestNetTimeoutIsTransient(t *testing.T) {
	e := &dbconn.NetTimeoutError{Silent: 2 * time.Second, Verdict: "backend 7 is idle"}
	for _, err := range []error{e, fmt.Errorf("read changes of public.a: %w", e), fmt.Errorf("timeout: %w", fmt.Errorf("x: %w", e))} {
		if !retry.Transient(err) {
			t.Errorf("not transient: %v", err)
		}
	}
}
