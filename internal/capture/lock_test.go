package capture

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/catalog"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestInstallWaitsAtMostLockTimeout: while another session holds a lock on the table, install
// waits at most the lock timeout per try, the application's later queries never wait behind it
// for longer than that, and install succeeds once the lock is gone.
func TestInstallWaitsAtMostLockTimeout(t *testing.T) {
	db := newOwnerDB(t, `CREATE TABLE public.t (id int PRIMARY KEY, v int); INSERT INTO public.t SELECT g, 0 FROM generate_series(1, 10) g;
CREATE TABLE public.other (id int PRIMARY KEY)`)
	ctx := context.Background()
	holder := db.Conn(t, db.Owner)
	app := db.Conn(t, db.Owner)
	installer := db.Conn(t, db.Owner)

	if _, err := holder.Exec(ctx, "BEGIN; UPDATE public.t SET v = 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	const lockTimeout = 300 * time.Millisecond
	const held = 1500 * time.Millisecond
	var stop atomic.Bool
	var worst atomic.Int64
	var appErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			start := time.Now()
			if _, err := app.Exec(ctx, "UPDATE public.t SET v = v + 1 WHERE id = 2"); err != nil {
				appErr = err
				return
			}
			if d := int64(time.Since(start)); d > worst.Load() {
				worst.Store(d)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	go func() {
		time.Sleep(held)
		holder.Exec(ctx, "COMMIT")
	}()
	var progress syncBuffer
	start := time.Now()
	res, err := Install(ctx, installer, InstallOptions{LockTimeout: lockTimeout, Retries: 30, RetryBase: 50 * time.Millisecond, Progress: &progress})
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("install: %v\n%s", err, progress.String())
	}
	if appErr != nil {
		t.Fatalf("application query failed: %v", appErr)
	}
	if len(res.Installed) != 2 {
		t.Fatalf("installed %v", res.Installed)
	}
	if elapsed < held {
		t.Fatalf("install finished in %s while the lock was held for %s", elapsed, held)
	}
	if !strings.Contains(progress.String(), "lock not granted within 300ms") {
		t.Fatalf("no retry reported:\n%s", progress.String())
	}
	if w := time.Duration(worst.Load()); w > lockTimeout+250*time.Millisecond {
		t.Fatalf("application query waited %s behind install (lock timeout %s)", w, lockTimeout)
	}
	t.Logf("install took %s; worst application wait %s", elapsed.Round(time.Millisecond), time.Duration(worst.Load()).Round(time.Millisecond))

	// With too few retries, install gives up with a clear message and commits nothing for t.
	if err := Remove(ctx, installer, DefaultSchema, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "BEGIN; UPDATE public.t SET v = 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	_, err = Install(ctx, installer, InstallOptions{LockTimeout: 100 * time.Millisecond, Retries: 1, RetryBase: 10 * time.Millisecond, Filter: catalog.Filter{Tables: []string{"t"}}})
	holder.Exec(ctx, "COMMIT")
	if err == nil || !strings.Contains(err.Error(), "not granted within 100ms after 2 tries") {
		t.Fatalf("err = %v", err)
	}
	reg, err := LoadRegistry(ctx, installer, DefaultSchema)
	if err != nil || len(reg) != 0 {
		t.Fatalf("registry after failed install: %v, %v", reg, err)
	}
}

// TestInstallUnderPgbench: a pgbench run during install sees no deadlock or other error.
func TestInstallUnderPgbench(t *testing.T) {
	if _, err := exec.LookPath("pgbench"); err != nil {
		t.Skip("pgbench not installed")
	}
	db := newOwnerDB(t, "")
	url := db.URLAs(db.Owner)
	if out, err := exec.Command("pgbench", "-i", "-q", "-s", "1", url).CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	db.ExecAs(t, db.Owner, "ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY")
	ctx := context.Background()
	bench := exec.Command("pgbench", "-c", "4", "-T", "4", "-n", url)
	var out bytes.Buffer
	bench.Stdout, bench.Stderr = &out, &out
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	conn := db.Conn(t, db.Owner)
	res, err := Install(ctx, conn, InstallOptions{LockTimeout: 200 * time.Millisecond, Retries: 20, RetryBase: 50 * time.Millisecond})
	berr := bench.Wait()
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if berr != nil || strings.Contains(out.String(), "deadlock") || strings.Contains(out.String(), "ERROR") {
		t.Fatalf("pgbench during install: %v\n%s", berr, out.String())
	}
	if len(res.Tables) != 4 {
		t.Fatalf("captured %d tables, want 4", len(res.Tables))
	}
	// Capture is live: the delta tables of the written tables have rows after install.
	rows := deltaRows(t, conn, DefaultSchema)
	if len(rows) == 0 {
		t.Fatalf("no change captured while pgbench ran after install:\n%s", out.String())
	}
}

// TestFreshInstallLetsReadersThrough: a fresh install takes no lock stronger than CREATE
// TRIGGER's SHARE ROW EXCLUSIVE, so readers are not blocked while it waits for writers.
func TestFreshInstallLetsReadersThrough(t *testing.T) {
	db := newOwnerDB(t, `CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t VALUES (1)`)
	ctx := context.Background()
	holder := db.Conn(t, db.Owner)
	reader := db.Conn(t, db.Owner)
	installer := db.Conn(t, db.Owner)
	if _, err := holder.Exec(ctx, "BEGIN; INSERT INTO public.t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Install(ctx, installer, InstallOptions{LockTimeout: 3 * time.Second, Retries: -1})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // install now waits for the holder's ROW EXCLUSIVE lock
	start := time.Now()
	var n int
	if err := reader.QueryRow(ctx, "SELECT count(*) FROM public.t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a reader waited %s behind the install", d)
	}
	holder.Exec(ctx, "COMMIT")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
