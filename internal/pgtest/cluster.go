// Package pgtest starts throwaway PostgreSQL clusters for tests and hands each test a fresh database.
package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a running throwaway PostgreSQL server listening on a private unix socket.
type Cluster struct {
	Name    string // label used in messages
	Dir     string // temp dir holding data and socket
	DataDir string
	SockDir string
	Port    int
	BinDir  string
	Version int    // server_version_num, e.g. 110022 or 170010
	asUser  string // OS user running the server ("" = current user)
	dbSeq   atomic.Int64
}

// ErrNoServer is returned when no PostgreSQL server binaries can be found.
var ErrNoServer = fmt.Errorf("no PostgreSQL server binaries found (install postgresql, or set PGFERRY_PGBIN to the directory holding initdb)")

// BinDir finds the directory holding initdb and pg_ctl: $PGFERRY_PGBIN, pg_config --bindir, or the newest /usr/lib/postgresql/*/bin.
func BinDir() (string, error) {
	if d := os.Getenv("PGFERRY_PGBIN"); d != "" {
		return d, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNoServer
}

func versionOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

var portSeq atomic.Int64

// BinDirFor finds the server binaries for the cluster called name. The source side ("source" and
// every cluster whose name does not start with "target") takes $PGFERRY_TEST_SOURCE_BIN, the target
// side ("target...") $PGFERRY_TEST_TARGET_BIN; unset, both fall back to BinDir. This is how one test
// binary runs against any pair of versions (scripts/pg-versions.sh run 11 17 -- go test ./...).
func BinDirFor(name string) (string, error) {
	env := "PGFERRY_TEST_SOURCE_BIN"
	if strings.HasPrefix(name, "target") {
		env = "PGFERRY_TEST_TARGET_BIN"
	}
	if d := os.Getenv(env); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("%s=%s holds no initdb: %w", env, d, err)
		}
		return d, nil
	}
	return BinDir()
}

// Start initialises and starts a new cluster. Extra settings are passed as -c options.
// When running as root, the server runs as the "postgres" OS user.
func Start(name string, settings ...string) (*Cluster, error) {
	return start(name, 15432+int(portSeq.Add(1))%1000, settings)
}

// StartTCP starts a cluster that also listens on 127.0.0.1 at a free TCP port, for tests that
// put a TCP proxy (internal/faultproxy) between the tools and the server; see TCPURL.
func StartTCP(name string, settings ...string) (*Cluster, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("pick a free port: %w", err)
	}
	return start(name, port, append([]string{"listen_addresses='127.0.0.1'"}, settings...))
}

// freePort picks a free TCP port on 127.0.0.1 that a restart can bind again (FreeAddr).
func freePort() (int, error) {
	addr, err := FreeAddr()
	if err != nil {
		return 0, err
	}
	if addr == "127.0.0.1:0" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	_, port, _ := net.SplitHostPort(addr)
	return strconv.Atoi(port)
}

// FreeAddr picks a free 127.0.0.1 port below the kernel's ephemeral range. A port in that range
// is handed to other processes' outgoing connections and ":0" listeners, which could take it in
// the moment a restart (a server's, a fault proxy's) leaves it unbound: it would lose the address its
// clients know. Where the range leaves too little room below it, the kernel picks.
func FreeAddr() (string, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const first = 20000 // above pgtest's socket-only clusters and the usual services
	if low-first < 1000 {
		return "127.0.0.1:0", nil
	}
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", first+rand.IntN(low-first))
		l, err := net.Listen("tcp", addr)
		if err == nil {
			l.Close()
			return addr, nil
		}
	}
	return "", fmt.Errorf("no free port in 127.0.0.1:%d-%d", first, low-1)
}

// TCPAddr is the cluster's TCP address (a cluster from StartTCP).
func (c *Cluster) TCPAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)) }

// TCPURL returns a URL for database db as the superuser through addr (host:port), the
// cluster's own TCP address or a proxy in front of it.
func TCPURL(addr, db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", addr, db)
}

func start(name string, port int, settings []string) (*Cluster, error) {
	bin, err := BinDirFor(name)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgferry-"+name+"-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Name: name, Dir: dir, DataDir: filepath.Join(dir, "data"), SockDir: filepath.Join(dir, "sock"), BinDir: bin}
	c.Port = port
	if err := os.Mkdir(c.SockDir, 0o777); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		c.asUser = "postgres"
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a 'postgres' OS user to run the server: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		for _, p := range []string{dir, c.SockDir} {
			if err := os.Chown(p, uid, gid); err != nil {
				return nil, err
			}
		}
	}
	if out, err := c.run("initdb", "--no-sync", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "-D", c.DataDir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	opts := []string{
		"-c listen_addresses=''", "-k " + c.SockDir, "-p " + strconv.Itoa(c.Port),
		"-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
		"-c max_connections=200", "-c shared_buffers=128MB", "-c wal_level=replica",
		"-c max_wal_senders=4", "-c unix_socket_permissions=0777",
		"-c max_prepared_transactions=20", // the write fence's tests hold prepared transactions
	}
	for _, s := range settings {
		opts = append(opts, "-c "+s)
	}
	logFile := filepath.Join(dir, "server.log")
	if out, err := c.run("pg_ctl", "start", "-w", "-t", "60", "-D", c.DataDir, "-l", logFile, "-o", strings.Join(opts, " ")); err != nil {
		log, _ := os.ReadFile(logFile)
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	if err := c.readVersion(); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) readVersion() error {
	conn, err := pgx.Connect(context.Background(), c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to new cluster %s: %w", c.Name, err)
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(context.Background(), "SELECT current_setting('server_version_num')::int").Scan(&c.Version)
}

// Major is the server's major version (11, 15, 17, ...).
func (c *Cluster) Major() int { return c.Version / 10000 }

// run runs a server binary, as the postgres OS user when we are root. A tool the cluster's own
// build lacks (the matrix builds hold only initdb, pg_ctl and postgres) comes from BinDir().
func (c *Cluster) run(tool string, args ...string) ([]byte, error) {
	path := filepath.Join(c.BinDir, tool)
	if _, err := os.Stat(path); err != nil {
		if d, err := BinDir(); err == nil {
			path = filepath.Join(d, tool)
		}
	}
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.Dir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.Bytes(), err
}

// Run runs a PostgreSQL server-side binary (pg_basebackup, pg_ctl, ...) from the cluster's BinDir
// as the cluster's OS user, and returns its combined output.
func (c *Cluster) Run(tool string, args ...string) ([]byte, error) { return c.run(tool, args...) }

// Restart stops the server (mode "fast": sessions are ended, as in a maintenance restart;
// "immediate": as in a crash) and starts it again with the same settings and port; it returns
// once the server accepts connections.
func (c *Cluster) Restart(mode string) error {
	if out, err := c.run("pg_ctl", "restart", "-m", mode, "-w", "-t", "60", "-D", c.DataDir, "-l", filepath.Join(c.Dir, "server.log")); err != nil {
		return fmt.Errorf("restart %s: %w\n%s", c.Name, err, out)
	}
	return nil
}

// Stop shuts the server down fast and removes its files.
func (c *Cluster) Stop() {
	if c == nil {
		return
	}
	c.run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", c.DataDir)
	os.RemoveAll(c.Dir)
}

// URL returns a connection URL for database db as the postgres superuser.
func (c *Cluster) URL(db string) string {
	return c.URLAs(db, "postgres")
}

// URLAs returns a connection URL for database db as role.
func (c *Cluster) URLAs(db, role string) string {
	return fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d&sslmode=disable", role, db, c.SockDir, c.Port)
}

// Exec runs SQL statements on database db as the superuser.
func (c *Cluster) Exec(ctx context.Context, db string, sql string) error {
	conn, err := pgx.Connect(ctx, c.URL(db))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// CreateDB creates a new, uniquely named empty database and returns its name.
func (c *Cluster) CreateDB(ctx context.Context, prefix string) (string, error) {
	name := fmt.Sprintf("%s_%d_%d", sanitize(prefix), time.Now().UnixNano()%1e6, c.dbSeq.Add(1))
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	if err := c.Exec(ctx, "postgres", "CREATE DATABASE "+quote(name)+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return name, nil
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "db"
	}
	return b.String()
}
