package faultproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/copyin"
	"github.com/pgferry/pgferry/internal/copyout"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/progress"
	"github.com/pgferry/pgferry/internal/retry"
)

// netTimeout is the tests' network bound: short, so a half-open connection costs seconds.
const netTimeout = 2 * time.Second

// side is one TCP cluster with a database and a proxy in front of it.
type side struct {
	c      *pgtest.Cluster
	db     string
	proxy  *Proxy
	direct string // unix-socket URL, for setup and checks
	url    string // through the proxy
}

func newSide(t *testing.T, name string) *side {
	t.Helper()
	c, err := pgtest.StartTCP(name)
	if err != nil {
		if pgtest.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Cleanup(c.Stop)
	return sideOn(t, c, name)
}

// sideOn is a fresh database on cluster c with a proxy called name in front of it.
func sideOn(t *testing.T, c *pgtest.Cluster, name string) *side {
	t.Helper()
	db, err := c.CreateDB(context.Background(), "netfault")
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(name, c.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return &side{c: c, db: db, proxy: p, direct: c.URL(db), url: pgtest.TCPURL(p.Addr(), db)}
}

func (s *side) exec(t *testing.T, sql string) {
	t.Helper()
	if err := s.c.Exec(context.Background(), s.db, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

const schema = `CREATE TABLE a(id int PRIMARY KEY, v text);
CREATE TABLE b(id bigint PRIMARY KEY, payload text, n numeric);
CREATE TABLE c(id int PRIMARY KEY, at timestamptz);`

const rows = `INSERT INTO a SELECT i, md5(i::text) || repeat('a', i % 50) FROM generate_series(1, 60000) i;
INSERT INTO b SELECT i, repeat(md5(i::text), 4), i / 7.0 FROM generate_series(1, 30000) i;
INSERT INTO c SELECT i, '2024-01-01'::timestamptz + i * interval '1 minute' FROM generate_series(1, 500) i;
ANALYZE;`

// configs are the pipeline's settings through the proxies: short network bound, quick retries.
func configs(src, dst *side) (copyout.Config, copyin.Config) {
	pol := &retry.Policy{Attempts: 8, Base: 100 * time.Millisecond, Max: time.Second}
	ocfg := copyout.Config{Source: src.url, Jobs: 3, SplitSize: 256 << 10, SplitBy: "key", Codec: "lz4", Format: copyout.FormatAuto,
		SnapshotMode: copyout.SnapshotPerChunk, CaptureSchema: "pgferry", StateSchema: "pgferry", Progress: progress.None,
		FrameSize: 32 << 10, Retry: pol, NetTimeout: netTimeout, RetryBuffer: 64 << 20, Filter: catalog.Filter{}}
	icfg := copyin.Config{Target: dst.url, Jobs: 3, StateSchema: "pgferry", Progress: progress.None,
		Retry: pol, NetTimeout: netTimeout, RetryBuffer: 64 << 20}
	return ocfg, icfg
}

// pipeline runs pgcopyout | pgcopyin through the proxies, with a deadline: a hang fails the test.
func pipeline(t *testing.T, src, dst *side, deadline time.Duration) (outErr, inErr string) {
	t.Helper()
	ocfg, icfg := configs(src, dst)
	oerr, ierr, outLog, inLog := runPipeline(t, ocfg, icfg, deadline)
	if oerr != nil || ierr != nil {
		t.Fatalf("pipeline failed: pgcopyout: %v; pgcopyin: %v\n%s\n%s", oerr, ierr, outLog, inLog)
	}
	return outLog, inLog
}

// runPipeline runs pgcopyout | pgcopyin with cfgs and returns what each returned and wrote on stderr.
func runPipeline(t *testing.T, ocfg copyout.Config, icfg copyin.Config, deadline time.Duration) (oerr, ierr error, outLog, inLog string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	pr, pw := io.Pipe()
	var ob, ib syncBuffer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		oerr = copyout.Run(ctx, ocfg, pw, &ob)
		pw.CloseWithError(oerr) // nil: EOF
	}()
	go func() {
		defer wg.Done()
		ierr = copyin.Run(ctx, icfg, pr, &ib)
		pr.Close()
	}()
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the pipeline hung: still running after %s\npgcopyout: %s\npgcopyin: %s", deadline, ob.String(), ib.String())
	}
	return oerr, ierr, ob.String(), ib.String()
}

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

func setup(t *testing.T) (src, dst *side) {
	src, dst = newSide(t, "source-tcp"), newSide(t, "target-tcp")
	src.exec(t, schema+rows)
	dst.exec(t, schema)
	installCapture(t, src)
	return src, dst
}

// waitLoaded waits until the target committed a first chunk, so faults land mid-copy.
func waitLoaded(dst *side) {
	for i := 0; i < 600; i++ {
		conn := dst.direct
		n, err := countChunks(conn)
		if err == nil && n > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countChunks(url string) (int64, error) {
	ctx := context.Background()
	conn, err := connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, "SELECT count(*) FROM pgferry.copy_chunks").Scan(&n)
	return n, err
}

// TestHalfOpenNoticed: both proxies stop passing bytes mid-copy without closing anything; each
// tool notices within --net-timeout, retries the chunks in flight, and the copy completes.
func TestHalfOpenNoticed(t *testing.T) {
	src, dst := setup(t)
	stop := throttle(t, src.proxy, 1500)
	go func() {
		waitLoaded(dst)
		dst.proxy.HalfOpen(3 * netTimeout / 2)
		src.proxy.HalfOpen(3 * netTimeout / 2)
		stop()
	}()
	start := time.Now()
	outLog, inLog := pipeline(t, src, dst, 90*time.Second)
	t.Logf("copy with two half-open periods took %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(outLog+inLog, "network timeout") {
		t.Errorf("no network timeout reported:\npgcopyout: %s\npgcopyin: %s", outLog, inLog)
	}
	pgtest.RequireSameData(t, src.direct, dst.direct, "pgferry")
}

// TestCopyChaos: a seeded series of faults on both sides during one pgcopyout | pgcopyin.
func TestCopyChaos(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PGFERRY_CHAOS_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (PGFERRY_CHAOS_SEED=%d repeats it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 15))
	src, dst := setup(t)
	stop := throttle(t, src.proxy, 700)
	done := make(chan struct{})
	var injected []string
	go func() {
		defer close(done)
		defer stop()
		waitLoaded(dst)
		for i := 0; i < 12; i++ {
			time.Sleep(time.Duration(150+rng.IntN(400)) * time.Millisecond)
			p, name := src.proxy, "source"
			if rng.IntN(2) == 1 {
				p, name = dst.proxy, "target"
			}
			kind := []string{"reset", "reset mid-frame", "latency", "half-open"}[rng.IntN(4)]
			if i == 5 {
				kind = "half-open" // at least one
			}
			switch kind {
			case "reset":
				p.ResetAll()
			case "reset mid-frame":
				p.ResetOnData(100 * time.Millisecond)
			case "latency":
				p.Latency(500*time.Millisecond, 30, 20)
			case "half-open":
				p.HalfOpen(netTimeout + 500*time.Millisecond)
			}
			injected = append(injected, name+": "+kind)
		}
	}()
	outLog, inLog := pipeline(t, src, dst, 3*time.Minute)
	<-done
	pgtest.RequireSameData(t, src.direct, dst.direct, "pgferry")
	t.Logf("faults: %s", strings.Join(injected, ", "))
	fmt.Printf("copy chaos (seed %d): source side survived %d faults (%d retries), target side %d faults (%d retries)\n",
		seed, src.proxy.Faults.Load(), strings.Count(outLog, "retrying"), dst.proxy.Faults.Load(), strings.Count(inLog, "retrying"))
	if n := src.proxy.Faults.Load() + dst.proxy.Faults.Load(); n < 10 {
		t.Errorf("only %d faults were injected", n)
	}
}

// throttle limits the server-to-client bandwidth of p (KB/s) until stop, so the copy lasts long
// enough for faults to land in it; it is not counted as a fault.
func throttle(t *testing.T, p *Proxy, kbps int) (stop func()) {
	stop, err := p.Throttle(kbps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return stop
}
