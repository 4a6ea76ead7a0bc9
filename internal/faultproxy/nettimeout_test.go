package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/delta"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/retry"
	"github.com/pgferry/pgferry/internal/verify"
)

// freezer is a TCP forwarder that can freeze the connections open through it: their bytes are
// dropped, nothing is closed, while new connections pass, as a NAT or load balancer that forgot
// the old ones. (toxiproxy's toxics hold every connection, new ones too.)
type freezer struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	conns    []*atomic.Bool
}

func newFreezer(t *testing.T, upstream string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, upstream: upstream}
	t.Cleanup(func() { ln.Close() })
	go f.serve()
	return f
}

func (f *freezer) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", f.upstream)
		if err != nil {
			c.Close()
			continue
		}
		frozen := new(atomic.Bool)
		f.mu.Lock()
		f.conns = append(f.conns, frozen)
		f.mu.Unlock()
		go pump(u, c, frozen)
		go pump(c, u, frozen)
	}
}

// pump copies from src to dst until either fails, dropping what it reads once frozen.
func pump(dst, src net.Conn, frozen *atomic.Bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// freeze freezes every connection open now.
func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Store(true)
	}
}

func (f *freezer) addr() string { return f.ln.Addr().String() }

// TestHalfOpenSessionEnded: a non-superuser's connection holding a row lock in a transaction
// goes half-open (its bytes vanish, the server stays reachable). The next statement fails with
// the network timeout within the bound plus the probe's, the probe finds the backend idle in
// its transaction and ends it, so the lock is free for the retry at once.
func TestHalfOpenSessionEnded(t *testing.T) {
	s := sharedSide(t, "source")
	role := "app_" + s.db
	s.exec(t, `CREATE ROLE "`+role+`" LOGIN; CREATE TABLE t(id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0);
		GRANT SELECT, UPDATE ON t TO "`+role+`"`)
	t.Cleanup(func() {
		s.c.Exec(context.Background(), s.db, `DROP OWNED BY "`+role+`"; DROP ROLE IF EXISTS "`+role+`"`)
	})
	f := newFreezer(t, s.c.TCPAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", role, f.addr(), s.db)
	conn, err := dbconn.Connect(ctx, url, dbconn.Target, dbconn.Options{AppName: "pgferry-test", NetTimeout: netTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE t SET v = 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	f.freeze()
	start := time.Now()
	_, err = tx.Exec(ctx, "UPDATE t SET v = 2 WHERE id = 1")
	took := time.Since(start)
	var nte *dbconn.NetTimeoutError
	if !errors.As(err, &nte) || !errors.Is(err, dbconn.ErrNetTimeout) {
		t.Fatalf("after %s: err = %v, want a network timeout", took, err)
	}
	t.Logf("noticed after %s: %v", took.Round(time.Millisecond), err)
	if bound := netTimeout + 2*time.Second + time.Second; took < netTimeout || took > bound {
		t.Errorf("noticed after %s, want between %s and %s", took, netTimeout, bound)
	}
	if !nte.Terminated {
		t.Errorf("the orphaned backend was not ended: %v", err)
	}
	s.exec(t, "SET lock_timeout = '1s'; UPDATE t SET v = 3 WHERE id = 1")
	var v int
	direct, err := connect(ctx, s.direct)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	if err := direct.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != 3 {
		t.Fatalf("v = %d, %v; want 3 (the lost transaction rolled back, the retry's committed)", v, err)
	}
}

// TestSyncHalfOpen: pgdelta's sync loop (delta.Sync, as 'pgdelta sync' runs it) while its
// source connection and then its target connection go half-open for good (their bytes vanish,
// nothing is ever closed; new connections pass): each is noticed within the bound plus the
// probe's, its backend ended, the batch in flight redone on new connections, and the target ends
// equal to the source. Without the watchdog the sync would wait forever: the test's deadline.
func TestSyncHalfOpen(t *testing.T) {
	src, dst := smallSetup(t)
	pipeline(t, src, dst, 30*time.Second)
	src.exec(t, `UPDATE a SET v = v || 'x' WHERE id % 2 = 0; DELETE FROM b WHERE id % 5 = 0;
		INSERT INTO c SELECT i, now() FROM generate_series(501, 3000) i`)
	stop := throttle(t, src.proxy, 60)
	fs, fd := newFreezer(t, src.proxy.Addr()), newFreezer(t, dst.proxy.Addr())
	srcURL, dstURL := pgtest.TCPURL(fs.addr(), src.db), pgtest.TCPURL(fd.addr(), dst.db)
	var log syncBuffer
	connector := func(url string, r dbconn.Role) func(context.Context) (*pgx.Conn, error) {
		return func(ctx context.Context) (*pgx.Conn, error) {
			return dbconn.Connect(ctx, url, r, dbconn.Options{AppName: "pgferry-delta", NetTimeout: netTimeout})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		time.Sleep(700 * time.Millisecond)
		fs.freeze() // the source mid-read
		for ctx.Err() == nil && !strings.Contains(log.String(), "network timeout") {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		fd.freeze() // the target of the redone batch
		time.Sleep(time.Second)
		stop()
	}()
	start := time.Now()
	res, err := delta.Sync(ctx, delta.SyncOptions{
		ConnectSource: connector(srcURL, dbconn.Source), ConnectTarget: connector(dstURL, dbconn.Target),
		CaptureSchema: "pgferry", StateSchema: "pgferry", MaxBatch: 1000, PruneEvery: -1, Log: &log,
		Follow:    delta.FollowOptions{Retry: retry.Policy{Attempts: 8, Base: 100 * time.Millisecond, Max: time.Second}},
		SourceURL: srcURL, TargetURL: dstURL,
	})
	if ctx.Err() != nil {
		t.Fatalf("pgdelta sync hung: still running after 60s\n%s", log.String())
	}
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, log.String())
	}
	t.Logf("sync of %d batches, %d rows with two half-open connections took %s\n%s", res.Batches, res.Rows, time.Since(start).Round(time.Millisecond), log.String())
	if n := strings.Count(log.String(), "network timeout"); n < 2 {
		t.Errorf("%d batches redone after a network timeout, want 2 (source, then target):\n%s", n, log.String())
	}
	// Batches run until caught up only for what was committed before the first batch; all of it
	// was, so the target must now equal the source.
	pgtest.RequireSameData(t, src.direct, dst.direct, "pgferry")
}

// smallSetup is setup with a tenth of the rows: a sync test copies them first.
func smallSetup(t *testing.T) (src, dst *side) {
	src, dst = sharedSide(t, "source"), sharedSide(t, "target")
	src.exec(t, schema+`INSERT INTO a SELECT i, md5(i::text) || repeat('a', i % 50) FROM generate_series(1, 6000) i;
		INSERT INTO b SELECT i, repeat(md5(i::text), 4), i / 7.0 FROM generate_series(1, 3000) i;
		INSERT INTO c SELECT i, '2024-01-01'::timestamptz + i * interval '1 minute' FROM generate_series(1, 500) i`)
	dst.exec(t, schema)
	installCapture(t, src)
	return src, dst
}

// installCapture installs pgtrig's capture on every table of s.
func installCapture(t *testing.T, s *side) {
	t.Helper()
	conn, err := connect(context.Background(), s.direct)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := capture.Install(context.Background(), conn, capture.InstallOptions{}); err != nil {
		t.Fatalf("install capture: %v", err)
	}
}

// TestVerifyHalfOpen: pgverify, run as its command line with --net-timeout 2s (the flag every
// tool now has), reads rows through a throttled proxy; mid-scan its source connections go
// half-open for good (new connections pass). It notices, redoes the scan on a new connection
// and ends, exit 0 (the sides are equal), instead of waiting forever.
func TestVerifyHalfOpen(t *testing.T) {
	defer dbconn.SetNetTimeout(dbconn.DefaultNetTimeout)
	src, dst := sharedSide(t, "source"), sharedSide(t, "target")
	const data = `CREATE TABLE a(id int PRIMARY KEY, v text);
		INSERT INTO a SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, 20000) i`
	src.exec(t, data)
	dst.exec(t, data)
	throttle(t, src.proxy, 250)
	f := newFreezer(t, src.proxy.Addr())
	time.AfterFunc(1500*time.Millisecond, f.freeze)
	done := make(chan int, 1)
	start := time.Now()
	go func() {
		done <- verify.Main([]string{"pgverify", "--source", pgtest.TCPURL(f.addr(), src.db), "--target", dst.url,
			"--net-timeout", netTimeout.String(), "--hash", "client", "--no-record", "--progress", "none", "-j", "1"})
	}()
	select {
	case code := <-done:
		took := time.Since(start)
		t.Logf("pgverify exited %d after %s", code, took.Round(time.Millisecond))
		if code != 0 {
			t.Fatalf("pgverify exited %d, want 0 (equal sides, the half-open connection retried)", code)
		}
		if took < 1500*time.Millisecond+netTimeout {
			t.Errorf("pgverify ended after %s, before the watchdog could fire: the fault missed the scan", took)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("pgverify hung on a half-open connection: still running after 45s")
	}
}

// sharedTCP holds the TCP clusters the network-timeout tests share (one source, one target),
// each test on fresh databases: starting clusters is most of what these tests would cost.
var sharedTCP = struct {
	sync.Mutex
	c map[string]*pgtest.Cluster
}{c: map[string]*pgtest.Cluster{}}

// sharedSide is a fresh database, with a proxy of its own, on the shared TCP cluster role.
func sharedSide(t *testing.T, role string) *side {
	t.Helper()
	sharedTCP.Lock()
	c, ok := sharedTCP.c[role]
	if !ok {
		var err error
		if c, err = pgtest.StartTCP("shared-" + role + "-tcp"); err != nil {
			sharedTCP.Unlock()
			if pgtest.Required() {
				t.Fatal(err)
			}
			t.Skip(err)
		}
		sharedTCP.c[role] = c
	}
	sharedTCP.Unlock()
	return sideOn(t, c, t.Name()+"-"+role)
}

// stopSharedTCP stops the shared TCP clusters (from TestMain).
func stopSharedTCP() {
	sharedTCP.Lock()
	defer sharedTCP.Unlock()
	for k, c := range sharedTCP.c {
		c.Stop()
		delete(sharedTCP.c, k)
	}
}
