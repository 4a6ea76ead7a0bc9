package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestCopyinKillResume SIGKILLs pgcopyin in the middle of a load, then resumes with the real
// pipeline: the target must end up with exactly the source's rows, no duplicates, no gaps.
func TestCopyinKillResume(t *testing.T) {
	needTools(t, "pgcopyout", "pgcopyin")
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := `CREATE TABLE "Big One" (id bigint PRIMARY KEY, payload text, n numeric); CREATE TABLE small (k text PRIMARY KEY);`
	src.Exec(t, ddl+`INSERT INTO "Big One" SELECT g, repeat(md5(g::text), 3), g / 7.0 FROM generate_series(1, 60000) g;
		INSERT INTO small SELECT 'k' || g FROM generate_series(1, 50) g; ANALYZE;`)
	dst.Exec(t, ddl)

	var streamBuf, errBuf bytes.Buffer
	out := exec.Command("pgcopyout", "--source", src.URL, "--one-off", "-j", "2", "--split-size", "512kB", "--progress", "none")
	out.Stdout, out.Stderr = &streamBuf, &errBuf
	if err := out.Run(); err != nil {
		t.Fatalf("pgcopyout: %v\n%s", err, errBuf.String())
	}
	data := streamBuf.Bytes()

	in, inErr := slowLoad(t, data, dst.URL)
	waitChunks(t, dst.URL, 2, in, inErr)
	if err := in.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	in.Wait()
	total := queryInt(t, dst.URL, `SELECT count(*) FROM pgferry.copy_plan`)
	doneChunks := queryInt(t, dst.URL, `SELECT count(*) FROM pgferry.copy_chunks`)
	if doneChunks >= total {
		t.Fatalf("the load finished (%d of %d chunks) before the kill: make the table bigger", doneChunks, total)
	}
	// Only whole chunks are on the target: rows equal what copy_chunks records.
	rows := queryInt(t, dst.URL, `SELECT (SELECT count(*) FROM "Big One") + (SELECT count(*) FROM small)`)
	recorded := queryInt(t, dst.URL, `SELECT sum(rows) FROM pgferry.copy_chunks`)
	if rows != recorded {
		t.Fatalf("after SIGKILL the target holds %d rows, copy_chunks records %d", rows, recorded)
	}
	t.Logf("killed after %d of %d chunks (%d rows)", doneChunks, total, rows)

	// Resume the operator's way: pgcopyout skips what the target holds, pgcopyin the rest.
	resume := exec.Command("bash", "-o", "pipefail", "-c",
		`pgcopyout --source "$SRC" --target "$DST" --one-off -j 2 --split-size 512kB --progress none | pgcopyin --target "$DST" --progress none`)
	resume.Env = append(os.Environ(), "SRC="+src.URL, "DST="+dst.URL)
	outb, err := resume.CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, outb)
	}
	t.Logf("resume: %s", outb)
	pgtest.RequireSameTable(t, src.URL, dst.URL, `"Big One"`)
	pgtest.RequireSameTable(t, src.URL, dst.URL, "small")
	if got := queryInt(t, dst.URL, `SELECT count(*) FROM pgferry.copy_chunks`); got != total {
		t.Errorf("copy_chunks holds %d chunks, plan has %d", got, total)
	}
}

// slowLoad starts pgcopyin on dstURL and feeds it data at a few MB/s.
func slowLoad(t *testing.T, data []byte, dstURL string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	in := exec.Command("pgcopyin", "--target", dstURL, "--progress", "none")
	stdin, err := in.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	inErr := new(bytes.Buffer)
	in.Stderr = inErr
	if err := in.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		for off := 0; off < len(data); off += 32 << 10 {
			if _, err := stdin.Write(data[off:min(off+32<<10, len(data))]); err != nil {
				return
			}
			time.Sleep(4 * time.Millisecond)
		}
		stdin.Close()
	}()
	return in, inErr
}

// waitChunks waits until copy_chunks on url holds n rows.
func waitChunks(t *testing.T, url string, n int64, in *exec.Cmd, inErr *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if queryInt(t, url, "SELECT (to_regclass('pgferry.copy_chunks') IS NOT NULL)::int") == 1 &&
			queryInt(t, url, "SELECT count(*) FROM pgferry.copy_chunks") >= n {
			return
		}
		if time.Now().After(deadline) {
			in.Process.Kill()
			t.Fatalf("%d chunks not loaded in 60s\n%s", n, inErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCopyinSIGTERM interrupts a load: in-flight chunks roll back, committed ones stay, the exit
// status says so, and a re-run completes the copy.
func TestCopyinSIGTERM(t *testing.T) {
	needTools(t, "pgcopyout", "pgcopyin")
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, `CREATE TABLE t (id bigint PRIMARY KEY, v text); INSERT INTO t SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 60000) g; ANALYZE t;`)
	dst.Exec(t, `CREATE TABLE t (id bigint PRIMARY KEY, v text)`)
	out := exec.Command("pgcopyout", "--source", src.URL, "--one-off", "-j", "2", "--split-size", "512kB", "--progress", "none")
	data, err := out.Output()
	if err != nil {
		t.Fatalf("pgcopyout: %v", err)
	}
	in, inErr := slowLoad(t, data, dst.URL)
	waitChunks(t, dst.URL, 1, in, inErr)
	in.Process.Signal(syscall.SIGTERM)
	err = in.Wait()
	if code := in.ProcessState.ExitCode(); code == 0 || !strings.Contains(inErr.String(), "interrupted") {
		t.Fatalf("after SIGTERM: exit %d, %v\n%s", code, err, inErr.String())
	}
	rows := queryInt(t, dst.URL, `SELECT count(*) FROM t`)
	if recorded := queryInt(t, dst.URL, `SELECT sum(rows) FROM pgferry.copy_chunks`); rows != recorded {
		t.Fatalf("after SIGTERM the target holds %d rows, copy_chunks records %d", rows, recorded)
	}
	for i := 0; ; i++ { // sessions end asynchronously after the client is gone
		n := queryInt(t, dst.URL, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgferry-pgcopyin'`)
		if n == 0 {
			break
		}
		if i == 50 {
			t.Fatalf("%d pgcopyin sessions left on the target", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	re := exec.Command("pgcopyin", "--target", dst.URL, "--progress", "none")
	re.Stdin = bytes.NewReader(data)
	if b, err := re.CombinedOutput(); err != nil {
		t.Fatalf("re-run: %v\n%s", err, b)
	}
	pgtest.RequireSameTable(t, src.URL, dst.URL, "t")
}
