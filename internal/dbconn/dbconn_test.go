package dbconn

import (
	"context"
	"errors"
	"testing"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/pgtest"
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
