package e2e

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/stream"
)

// TestCopyoutSIGINT: the real binary stops cleanly on SIGINT: exit 130, a message, no End frame
// (the reader reports the stream as truncated), and no source session left behind.
func TestCopyoutSIGINT(t *testing.T) {
	needTools(t, "pgcopyout")
	src := pgtest.Source(t)
	src.Exec(t, `CREATE TABLE big(id int PRIMARY KEY, pad text);
INSERT INTO big SELECT i, md5(i::text) || repeat('p', 150) FROM generate_series(1, 120000) i; ANALYZE big;`)
	file := filepath.Join(t.TempDir(), "s")
	out, _ := os.Create(file)
	defer out.Close()
	cmd := exec.Command("pgcopyout", "--source", src.URL, "-j", "2", "--one-off", "--codec", "gzip:9", "--split-size", "1MB", "--progress", "none")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Stat(file); err == nil && fi.Size() > 64<<10 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("pgcopyout wrote nothing in 30s: %s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v (want 130); stderr: %s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "pgcopyout: interrupted") {
		t.Errorf("stderr: %s", stderr.String())
	}
	in, _ := os.Open(file)
	defer in.Close()
	r, err := stream.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	for {
		f, err := r.Next()
		if err == io.EOF {
			t.Fatal("an interrupted copy wrote an End frame (the copy finished before the signal?)")
		}
		if err != nil {
			if !errors.Is(err, stream.ErrTruncated) {
				t.Fatalf("want truncated, got %v", err)
			}
			break
		}
		f.Release()
	}
	conn := connectURL(t, src.URL)
	var n int
	for i := 0; i < 50; i++ {
		conn.QueryRow(ctxb, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgferry-pgcopyout' AND datname = current_database()").Scan(&n)
		if n == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n != 0 {
		t.Errorf("%d pgcopyout sessions left on the source", n)
	}
}
