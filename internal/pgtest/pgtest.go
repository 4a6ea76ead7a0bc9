package pgtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// shared clusters, started lazily once per test binary.
var (
	mu       sync.Mutex
	clusters = map[string]*Cluster{}
	startErr = map[string]error{}
)

// Main runs the tests of a package and stops the clusters they started. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}

// StopAll stops every shared cluster started so far.
func StopAll() {
	mu.Lock()
	defer mu.Unlock()
	for k, c := range clusters {
		c.Stop()
		delete(clusters, k)
	}
}

// Shared returns the shared cluster called name ("source", "target", ...), starting it on first use.
// Without a server the test is skipped, except under CI=true where it fails.
func Shared(t testing.TB, name string) *Cluster {
	t.Helper()
	c, err := SharedCluster(name)
	if err != nil {
		noServer(t, err)
	}
	return c
}

// SharedCluster returns the shared cluster called name, starting it on first use.
func SharedCluster(name string) (*Cluster, error) {
	mu.Lock()
	defer mu.Unlock()
	if c, ok := clusters[name]; ok {
		return c, nil
	}
	if err, ok := startErr[name]; ok {
		return nil, err
	}
	c, err := Start(name)
	if err != nil {
		startErr[name] = err
		return nil, err
	}
	clusters[name] = c
	return c, nil
}

// Required reports whether a missing server must fail the run (CI=true) rather than skip it.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("PGFERRY_REQUIRE_PG") == "1"
}

// DropDB drops database name on c, ending its sessions.
func (c *Cluster) DropDB(name string) {
	if os.Getenv("PGFERRY_KEEP_DB") != "" {
		fmt.Fprintf(os.Stderr, "pgtest: keeping %s\n", c.URL(name))
		return
	}
	ctx := context.Background()
	if c.Version >= 130000 {
		c.Exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+quote(name)+" WITH (FORCE)")
		return
	}
	// Before 13 there is no WITH (FORCE): keep new sessions out, end the open ones, then drop.
	c.Exec(ctx, "postgres", "ALTER DATABASE "+quote(name)+" ALLOW_CONNECTIONS false")
	for i := 0; i < 50; i++ {
		c.Exec(ctx, "postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "+quoteLiteral(name))
		if c.Exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+quote(name)) == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func noServer(t testing.TB, err error) {
	t.Helper()
	if Required() {
		t.Fatalf("pgtest: cannot start PostgreSQL (CI=true makes this a failure): %v", err)
	}
	t.Skipf("pgtest: skipping, cannot start PostgreSQL: %v", err)
}

// DB is a fresh database on a shared cluster, dropped when the test ends.
type DB struct {
	Cluster *Cluster
	Name    string
	URL     string // superuser URL
}

// NewDB creates a fresh database on the shared cluster called cluster, dropped at test end.
func NewDB(t testing.TB, cluster string) *DB {
	t.Helper()
	c := Shared(t, cluster)
	ctx := context.Background()
	name, err := c.CreateDB(ctx, t.Name())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { c.DropDB(name) })
	return &DB{Cluster: c, Name: name, URL: c.URL(name)}
}

// Source returns a fresh database on the shared source cluster.
func Source(t testing.TB) *DB { return NewDB(t, "source") }

// Target returns a fresh database on the shared target cluster.
func Target(t testing.TB) *DB { return NewDB(t, "target") }

// Exec runs SQL on the database as superuser, failing the test on error.
func (d *DB) Exec(t testing.TB, sql string) {
	t.Helper()
	if err := d.Cluster.Exec(context.Background(), d.Name, sql); err != nil {
		t.Fatalf("pgtest: exec on %s: %v\nSQL: %s", d.Name, err, truncate(sql, 400))
	}
}

// URLAs is the URL of this database for another role.
func (d *DB) URLAs(role string) string { return d.Cluster.URLAs(d.Name, role) }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
