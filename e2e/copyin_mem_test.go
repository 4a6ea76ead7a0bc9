package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestCopyinMemory loads a stream with pgcopyin and checks its peak RSS stays under 200 MB; it
// also logs the load rate. PGFERRY_COPYIN_ROWS scales it (rows of ~1 KB; default 5000 = ~5 MB):
//
//	PGFERRY_COPYIN_ROWS=2000000 go test -run TestCopyinMemory -v ./e2e   # ~2 GB
func TestCopyinMemory(t *testing.T) {
	needTools(t, "pgcopyout", "pgcopyin")
	rows := 5000
	if s := os.Getenv("PGFERRY_COPYIN_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		rows = n
	}
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := `CREATE TABLE wide (id bigint PRIMARY KEY, body text, blob bytea); `
	src.Exec(t, ddl+`INSERT INTO wide SELECT g, repeat(md5(g::text), 24), NULL FROM generate_series(1, `+strconv.Itoa(rows)+`) g;
		INSERT INTO wide VALUES (0, 'one huge row', (SELECT string_agg(sha512(int4send(x)), '') FROM generate_series(1, 50000) x)); ANALYZE wide;`)
	dst.Exec(t, ddl)
	f, err := os.CreateTemp(t.TempDir(), "stream")
	if err != nil {
		t.Fatal(err)
	}
	out := exec.Command("pgcopyout", "--source", src.URL, "--one-off", "-j", "4", "--split-size", "4MB", "--progress", "none")
	var errb bytes.Buffer
	out.Stdout, out.Stderr = f, &errb
	if err := out.Run(); err != nil {
		t.Fatalf("pgcopyout: %v\n%s", err, errb.String())
	}
	f.Seek(0, 0)
	in := exec.Command("pgcopyin", "--target", dst.URL, "-j", "4", "--progress", "none")
	in.Stdin, in.Stderr = f, &errb
	start := time.Now()
	if err := in.Run(); err != nil {
		t.Fatalf("pgcopyin: %v\n%s", err, errb.String())
	}
	el := time.Since(start)
	rss := in.ProcessState.SysUsage().(*syscall.Rusage).Maxrss / 1024 // KiB -> MiB
	size := queryInt(t, dst.URL, "SELECT pg_table_size('wide')")
	t.Logf("pgcopyin: %d rows, table %d MB in %v (%.1f MB/s), peak RSS %d MB", rows, size>>20, el.Round(time.Millisecond), float64(size)/1e6/el.Seconds(), rss)
	if rss > 200 {
		t.Errorf("pgcopyin peak RSS %d MB, want under 200 MB", rss)
	}
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM wide"); n != int64(rows)+1 {
		t.Errorf("%d rows loaded, want %d", n, rows+1)
	}
	if n := queryInt(t, dst.URL, "SELECT length(blob) FROM wide WHERE id = 0"); n != 50000*64 {
		t.Errorf("huge row holds %d bytes", n)
	}
}
