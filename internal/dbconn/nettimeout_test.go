package dbconn

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestWatchdogSparesLongStatements: on a connection bounded by 1s, a statement silent for 2.5s
// and a lock wait of 2.5s, run as a non-superuser, both finish: the probe finds the backend
// active (running, or waiting on a lock) and lets the wait go on.
func TestWatchdogSparesLongStatements(t *testing.T) {
	db := pgtest.Source(t)
	role := "watch_" + db.Name
	db.Exec(t, `CREATE ROLE "`+role+`" LOGIN; CREATE TABLE t(id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0);
		GRANT SELECT, UPDATE ON t TO "`+role+`"`)
	t.Cleanup(func() {
		db.Cluster.Exec(context.Background(), db.Name, `DROP OWNED BY "`+role+`"; DROP ROLE IF EXISTS "`+role+`"`)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opt := Options{AppName: "pgferry-test", NetTimeout: time.Second}
	conn, err := Connect(ctx, db.URLAs(role), Source, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	before := probes.Load()
	start := time.Now()
	if _, err := conn.Exec(ctx, "SELECT pg_sleep(2.5)"); err != nil {
		t.Fatalf("a silent statement of 2.5s was cut by a 1s bound: %v", err)
	}
	if d := time.Since(start); d < 2500*time.Millisecond {
		t.Fatalf("pg_sleep(2.5) took %s", d)
	}
	if n := probes.Load() - before; n < 2 {
		t.Fatalf("%d probes during 2.5s of silence with a 1s bound; want 2: the watchdog did not watch", n)
	}

	holder, err := Connect(ctx, db.URLAs(role), Source, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE t SET v = 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	before = probes.Load()
	release := time.AfterFunc(2500*time.Millisecond, func() { tx.Commit(context.Background()) })
	defer release.Stop()
	start = time.Now()
	if _, err := conn.Exec(ctx, "UPDATE t SET v = v + 10 WHERE id = 1"); err != nil {
		t.Fatalf("a lock wait of 2.5s was cut by a 1s bound: %v", err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("the lock wait took %s: the lock was not held", d)
	}
	if n := probes.Load() - before; n < 2 {
		t.Fatalf("%d probes during a lock wait of 2.5s with a 1s bound; want 2", n)
	}
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM t WHERE id = 1").Scan(&v); err != nil || v != 11 {
		t.Fatalf("v = %d, %v; want 11", v, err)
	}
}

func TestBackendVerdict(t *testing.T) {
	for _, c := range []struct {
		state, wtype, wait string
		alive              bool
	}{
		{"active", "", "", true},
		{"active", "Lock", "transactionid", true},
		{"active", "IO", "DataFileRead", true},
		{"active", "Client", "ClientWrite", false},
		{"active", "Client", "ClientRead", false},
		{"idle", "Client", "ClientRead", false},
		{"idle in transaction", "Client", "ClientRead", false},
		{"idle in transaction (aborted)", "", "", false},
		{"", "", "", false},
	} {
		if got := backendVerdict(7, c.state, c.wtype, c.wait); (got == "") != c.alive {
			t.Errorf("%q %q %q: verdict %q, want alive=%v", c.state, c.wtype, c.wait, got, c.alive)
		}
	}
	e := &NetTimeoutError{Silent: 2 * time.Second, Verdict: "backend 7 is idle", Terminated: true}
	if !errors.Is(e, ErrNetTimeout) || !e.Timeout() {
		t.Fatal("a NetTimeoutError must be ErrNetTimeout and a net timeout")
	}
	if got := fmt.Sprint(e); got != "network timeout: no reply came for 2s (half-open connection?): backend 7 is idle; its session was ended so that its locks go; raise --net-timeout (PGFERRY_NET_TIMEOUT) if the network is only slow" {
		t.Errorf("message: %s", got)
	}
}

// TestAddNetTimeoutFlag: every command taking --source or --target gets --net-timeout, once, and
// setting it (flag or environment) sets the bound of the connections opened afterwards.
func TestAddNetTimeoutFlag(t *testing.T) {
	defer SetNetTimeout(DefaultNetTimeout)
	var got time.Duration
	probe := func(*cli.Context) error { got = effectiveNetTimeout(Options{}); return nil }
	app := &cli.App{Name: "tool", Commands: []*cli.Command{
		{Name: "a", Flags: []cli.Flag{Flag(Source)}, Action: probe},
		{Name: "b", Flags: []cli.Flag{Flag(Target), NetTimeoutFlag()}, Action: probe},
		{Name: "c", Action: probe},
		{Name: "d", Subcommands: []*cli.Command{{Name: "e", Flags: []cli.Flag{Flag(Target)}, Action: probe}}},
	}}
	AddNetTimeoutFlag(app)
	count := func(fs []cli.Flag) (n int) {
		for _, f := range fs {
			if f.Names()[0] == "net-timeout" {
				n++
			}
		}
		return n
	}
	if a, b, c, e := count(app.Commands[0].Flags), count(app.Commands[1].Flags), count(app.Commands[2].Flags), count(app.Commands[3].Subcommands[0].Flags); a != 1 || b != 1 || c != 0 || e != 1 {
		t.Fatalf("--net-timeout flags: a=%d b=%d c=%d d e=%d; want 1 1 0 1", a, b, c, e)
	}
	if err := app.Run([]string{"tool", "a", "--net-timeout", "7s"}); err != nil || got != 7*time.Second {
		t.Fatalf("--net-timeout 7s: bound %s, %v", got, err)
	}
	t.Setenv(NetTimeoutEnv, "0")
	if err := app.Run([]string{"tool", "d", "e"}); err != nil || got != 0 {
		t.Fatalf("%s=0: bound %s, %v; want none", NetTimeoutEnv, got, err)
	}
	var ee *cliutil.ExitError
	if err := app.Run([]string{"tool", "a", "--net-timeout", "soon"}); !errors.As(err, &ee) || ee.Code != cliutil.ExitUsage {
		t.Fatalf("a bad --net-timeout: %v, want a usage error (exit 2)", err)
	}
	if effectiveNetTimeout(Options{NetTimeout: -1}) != 0 || effectiveNetTimeout(Options{NetTimeout: 3 * time.Second}) != 3*time.Second {
		t.Fatal("an explicit Options.NetTimeout must win over the process's")
	}
}

// TestLibpqKeepaliveParams: a URL with libpq's keepalive parameters (for psql and pg_dump in the
// scripts) connects: they are not sent to the server as settings, which would refuse them.
func TestLibpqKeepaliveParams(t *testing.T) {
	db := pgtest.Source(t)
	ctx := context.Background()
	url := db.URL + "&keepalives=1&keepalives_idle=30&keepalives_interval=10&keepalives_count=6&tcp_user_timeout=60000"
	conn, err := Connect(ctx, url, Source, Options{})
	if err != nil {
		t.Fatalf("connect with libpq's keepalive parameters: %v", err)
	}
	conn.Close(ctx)
}
