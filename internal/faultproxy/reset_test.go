package faultproxy

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestFaultsEndConnections: after a reset or a stall, a connection that was open through the
// proxy fails at its next statement at once (none is left open with bytes lost mid-stream), and
// a new connection works.
func TestFaultsEndConnections(t *testing.T) {
	s := newSide(t, "reset-tcp")
	for _, f := range []struct {
		name   string
		inject func() error
	}{
		{"reset", s.proxy.ResetAll},
		{"stall then reset", func() error { return s.proxy.Stall(300 * time.Millisecond) }},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := connect(ctx, s.url)
		if err != nil {
			t.Fatal(err)
		}
		busy := make(chan error, 1)
		go func() { // a statement in flight through the fault
			_, err := conn.Exec(ctx, "SELECT pg_sleep(0.2), repeat('x', 1000000)")
			busy <- err
		}()
		time.Sleep(50 * time.Millisecond)
		if err := f.inject(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = <-busy
		if err == nil {
			_, err = conn.Exec(ctx, "SELECT repeat('y', 1000000)")
		}
		if err == nil || ctx.Err() != nil {
			t.Errorf("%s: the connection did not fail (err %v, %s)", f.name, err, time.Since(start))
		} else if !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "closed") {
			t.Logf("%s: %v", f.name, err)
		}
		conn.Close(context.Background())
		c2, err := connect(ctx, s.url)
		if err != nil {
			t.Errorf("%s: no new connection after the fault: %v", f.name, err)
		} else {
			c2.Close(ctx)
		}
		cancel()
	}
}
