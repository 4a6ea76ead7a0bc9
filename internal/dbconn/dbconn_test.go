package dbconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/pgver"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestResolveOrder(t *testing.T) {
	t.Setenv("PGFERRY_SOURCE", "")
	t.Setenv("DATABASE_URL", "")
	if got := Resolve("", Source); got != "" {
		t.Fatalf("nothing set: got %q, want empty (PG* variables)", got)
	}
	t.Setenv("DATABASE_URL", "postgres://db/url")
	if got := Resolve("", Source); got != "postgres://db/url" {
		t.Fatalf("DATABASE_URL fallback: got %q", got)
	}
	t.Setenv("PGFERRY_SOURCE", "postgres://src")
	if got := Resolve("", Source); got != "postgres://src" {
		t.Fatalf("PGFERRY_SOURCE: got %q", got)
	}
	if got := Resolve("postgres://flag", Source); got != "postgres://flag" {
		t.Fatalf("flag: got %q", got)
	}
	if got := Resolve("", Target); got != "postgres://db/url" {
		t.Fatalf("target must not read PGFERRY_SOURCE: got %q", got)
	}
}

func TestConnectPinsSettings(t *testing.T) {
	db := pgtest.Source(t)
	ctx := context.Background()
	conn, err := Connect(ctx, db.URL, Source, Options{AppName: "pgferry-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tz, ds, app, efd string
	err = conn.QueryRow(ctx, "SELECT current_setting('TimeZone'), current_setting('DateStyle'), current_setting('application_name'), current_setting('extra_float_digits')").Scan(&tz, &ds, &app, &efd)
	if err != nil {
		t.Fatal(err)
	}
	if tz != "UTC" || ds != "ISO, MDY" || app != "pgferry-test" || efd != "3" {
		t.Fatalf("settings: TimeZone=%s DateStyle=%s application_name=%s extra_float_digits=%s", tz, ds, app, efd)
	}
}

func TestConnectErrorsAreUsageErrors(t *testing.T) {
	ctx := context.Background()
	_, err := Connect(ctx, "postgres://nobody@127.0.0.1:1/x?connect_timeout=2&sslmode=disable&password=secret", Target, Options{})
	var ee *cliutil.ExitError
	if !errors.As(err, &ee) || ee.Code != cliutil.ExitUsage {
		t.Fatalf("err = %v, want exit code 2", err)
	}
	_, err = Connect(ctx, "not a url ::: =", Target, Options{})
	if !errors.As(err, &ee) || ee.Code != cliutil.ExitUsage {
		t.Fatalf("bad string: err = %v, want exit code 2", err)
	}
}

// TestSessionsIgnoreRoleTimeouts: tiny timeouts and row_security set on the role and the
// database do not reach pgferry's sessions, on both sides; settings the server does not know
// (idle_session_timeout before 14, transaction_timeout before 17) are not sent to it.
func TestSessionsIgnoreRoleTimeouts(t *testing.T) {
	for _, side := range []string{"source", "target"} {
		t.Run(side, func(t *testing.T) {
			db := pgtest.NewDB(t, side)
			v := db.Cluster.Version
			role := "tiny_" + db.Name
			db.Exec(t, `CREATE ROLE "`+role+`" LOGIN;
				ALTER ROLE "`+role+`" SET statement_timeout = '5ms';
				ALTER ROLE "`+role+`" SET lock_timeout = '5ms';
				ALTER ROLE "`+role+`" SET idle_in_transaction_session_timeout = '20ms';
				ALTER DATABASE "`+db.Name+`" SET row_security = on`)
			if v >= 140000 {
				db.Exec(t, `ALTER ROLE "`+role+`" SET idle_session_timeout = '20ms'`)
			}
			if v >= 170000 {
				db.Exec(t, `ALTER ROLE "`+role+`" SET transaction_timeout = '20ms'`)
			}
			t.Cleanup(func() { db.Cluster.Exec(context.Background(), "postgres", `DROP ROLE IF EXISTS "`+role+`"`) })
			ctx := context.Background()
			conn, err := Connect(ctx, db.URLAs(role), Source, Options{})
			if err != nil {
				t.Fatalf("connect on %d: %v", v, err)
			}
			defer conn.Close(ctx)
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "SELECT pg_sleep(0.1)"); err != nil {
				t.Fatalf("statement_timeout reached the session: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // idle in the transaction, then idle outside it
			var rs string
			if err := tx.QueryRow(ctx, "SHOW row_security").Scan(&rs); err != nil || rs != "off" {
				t.Fatalf("row_security = %q, %v; want off", rs, err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatalf("idle_in_transaction_session_timeout or transaction_timeout reached the session: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
			var n int
			if err := conn.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
				t.Fatalf("idle_session_timeout reached the session: %v", err)
			}
			want := map[string]bool{"idle_session_timeout": v >= 140000, "transaction_timeout": v >= 170000}
			for name, known := range want {
				var got string
				err := conn.QueryRow(ctx, "SELECT coalesce(current_setting($1, true), 'unknown')", name).Scan(&got)
				if err != nil {
					t.Fatal(err)
				}
				if known && got != "0" || !known && got != "unknown" {
					t.Errorf("server %d: %s = %q (known to this version: %v)", v, name, got, known)
				}
			}
		})
	}
}

func TestDropTLSRefusal(t *testing.T) {
	err := errors.New("failed to connect to `user=app database=shop`:\n\t10.0.0.1:5432 (db): tls error: server refused TLS connection\n\t10.0.0.1:5432 (db): server error: FATAL: password authentication failed for user \"app\" (SQLSTATE 28P01)")
	got := dropTLSRefusal(err).Error()
	want := "failed to connect to `user=app database=shop`: 10.0.0.1:5432 (db): server error: FATAL: password authentication failed for user \"app\" (SQLSTATE 28P01)"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	only := errors.New("failed to connect to `user=app database=shop`:\n\t10.0.0.1:5432 (db): tls error: server refused TLS connection\n\t10.0.0.2:5432 (db): tls error: server refused TLS connection")
	if dropTLSRefusal(only) != only {
		t.Error("an error of refusals only must be kept whole")
	}
	if !errors.Is(dropTLSRefusal(err), err) {
		t.Error("the original error must stay in the chain")
	}
	twice := errors.New("failed to connect to `user=x database=db`:\n\t127.0.0.1:1 (127.0.0.1): dial error: dial tcp 127.0.0.1:1: connect: connection refused\n\t127.0.0.1:1 (127.0.0.1): dial error: dial tcp 127.0.0.1:1: connect: connection refused")
	if got, want := dropTLSRefusal(twice).Error(), "failed to connect to `user=x database=db`: 127.0.0.1:1 (127.0.0.1): dial error: dial tcp 127.0.0.1:1: connect: connection refused"; got != want {
		t.Errorf("a refused port said twice (sslmode=prefer):\ngot  %q\nwant %q", got, want)
	}
}

// TestConnectSurvivesIdleSessionTimeout: when the server's first ReadyForQuery reaches pgferry
// later than the role's 20 ms idle_session_timeout (a slow link here; a loaded host in CI), the
// server ends the session before the SETs pinned after connecting arrive; Connect then connects
// again with the settings at startup, and the session lives on.
func TestConnectSurvivesIdleSessionTimeout(t *testing.T) {
	db := pgtest.NewDB(t, "target")
	if db.Cluster.Version < 140000 {
		t.Skip("no idle_session_timeout before PostgreSQL 14")
	}
	role := "idle_" + db.Name
	db.Exec(t, `CREATE ROLE "`+role+`" LOGIN; ALTER ROLE "`+role+`" SET idle_session_timeout = '20ms'`)
	t.Cleanup(func() { db.Cluster.Exec(context.Background(), "postgres", `DROP ROLE IF EXISTS "`+role+`"`) })
	dir := slowSocket(t, filepath.Join(db.Cluster.SockDir, fmt.Sprintf(".s.PGSQL.%d", db.Cluster.Port)), db.Cluster.Port)
	url := fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d&sslmode=disable", role, db.Name, dir, db.Cluster.Port)
	ctx := context.Background()
	conn, err := Connect(ctx, url, Target, Options{NetTimeout: -1})
	if err != nil {
		t.Fatalf("connect through a slow link as a role with a 20 ms idle_session_timeout: %v", err)
	}
	defer conn.Close(ctx)
	time.Sleep(100 * time.Millisecond)
	var got string
	if err := conn.QueryRow(ctx, "SHOW idle_session_timeout").Scan(&got); err != nil || got != "0" {
		t.Fatalf("idle_session_timeout = %q, %v; want 0", got, err)
	}
}

// slowSocket serves a Unix socket (in a directory of its own, named for port) that forwards to
// the server's socket upstream and delays every piece of the server's replies by 60 ms.
func slowSocket(t *testing.T, upstream string, port int) string {
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, fmt.Sprintf(".s.PGSQL.%d", port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("unix", upstream)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(s, c); s.Close() }()
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := s.Read(buf)
					time.Sleep(60 * time.Millisecond)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return dir
}

// TestConnectForgetsNewerServer: when the server at an address is older than the one last seen
// there (it refuses a setting sent at startup), Connect forgets that version and connects again.
func TestConnectForgetsNewerServer(t *testing.T) {
	db := pgtest.Source(t)
	if db.Cluster.Version >= 170000 {
		t.Skip("needs a server before PostgreSQL 17, which refuses transaction_timeout")
	}
	cfg, err := ParseConfig(db.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	serverVersions.Store(serverKey(&cfg.Config), pgver.Version(170000))
	ctx := context.Background()
	conn, err := Connect(ctx, db.URL, Source, Options{})
	if err != nil {
		t.Fatalf("connect after a newer server was seen at the same address: %v", err)
	}
	defer conn.Close(ctx)
	var got string
	if err := conn.QueryRow(ctx, "SELECT coalesce(current_setting('transaction_timeout', true), 'unknown')").Scan(&got); err != nil || got != "unknown" {
		t.Errorf("transaction_timeout = %q, %v; want unknown", got, err)
	}
	if v, _ := serverVersions.Load(serverKey(&cfg.Config)); v != pgver.Version(db.Cluster.Version) {
		t.Errorf("remembered version %v, want %d", v, db.Cluster.Version)
	}
}
