package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestTrigInstallSurvivesLostConnection: pgtrig install whose session is killed while it waits
// for a lock reconnects, resumes, and captures every table.
func TestTrigInstallSurvivesLostConnection(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, `CREATE TABLE public.a (id int PRIMARY KEY); CREATE TABLE public.b (id int PRIMARY KEY); CREATE TABLE public.c (id int PRIMARY KEY)`)
	ctx := context.Background()
	holder, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	if _, err := holder.Exec(ctx, "BEGIN; INSERT INTO public.b VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("pgtrig", "install", "--source", db.URL, "--lock-timeout", "1500ms", "--retries", "20")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until install waits for public.b's lock, then kill its session. The watcher is a
	// connection of its own: inside holder's open transaction pg_stat_activity would show the
	// same snapshot on every poll.
	watcher, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close(ctx)
	killed := false
	for i := 0; i < 200 && !killed; i++ {
		time.Sleep(100 * time.Millisecond)
		var n int
		if err := watcher.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
  WHERE application_name = 'pgferry-trig' AND datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		killed = n > 0
	}
	if !killed {
		cmd.Process.Kill()
		t.Fatalf("install never waited for the lock:\n%s", stderr.String())
	}
	time.Sleep(500 * time.Millisecond)
	holder.Exec(ctx, "COMMIT")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("pgtrig install: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "reconnecting") {
		t.Fatalf("no reconnect reported:\n%s", stderr.String())
	}
	var n int
	if err := holder.QueryRow(ctx, "SELECT count(*) FROM pgferry.capture_tables").Scan(&n); err != nil || n != 3 {
		t.Fatalf("captured %d tables (%v), want 3\n%s", n, err, stderr.String())
	}
	if !strings.Contains(stdout.String(), ":") {
		t.Fatalf("no position printed: %q", stdout.String())
	}
}
