package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestDeltaFork copies from a physical copy (pg_basebackup, started as its own primary) of a
// source that keeps being written to, then catches up on the real source from the newest mark
// present in the fork: nothing may be lost.
func TestDeltaFork(t *testing.T) {
	needTools(t, "pgdelta", "pgtrig")
	c, err := pgtest.Start("fork-src")
	if err != nil {
		if pgtest.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer c.Stop()
	ctx := context.Background()
	db, err := c.CreateDB(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	srcURL := c.URL(db)
	if err := c.Exec(ctx, db, deltaDDL+deltaSeed); err != nil {
		t.Fatal(err)
	}
	dst := pgtest.Target(t)
	dst.Exec(t, deltaDDL)
	if out, err := exec.Command("pgtrig", "install", "--source", srcURL).CombinedOutput(); err != nil {
		t.Fatalf("pgtrig install: %v\n%s", err, out)
	}
	stop := make(chan struct{})
	wg := deltaWriters(t, srcURL, 2, 9, stop)
	for range 3 {
		time.Sleep(150 * time.Millisecond)
		if out, err := exec.Command("pgtrig", "mark", "--source", srcURL).CombinedOutput(); err != nil {
			t.Fatalf("pgtrig mark: %v\n%s", err, out)
		}
	}
	time.Sleep(150 * time.Millisecond)
	forkDir := filepath.Join(c.Dir, "fork")
	if out, err := c.Run("pg_basebackup", "-D", forkDir, "-h", c.SockDir, "-p", strconv.Itoa(c.Port), "-U", "postgres", "-X", "stream", "-c", "fast"); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	forkPort := c.Port + 500
	if out, err := c.Run("pg_ctl", "start", "-w", "-t", "60", "-D", forkDir, "-l", filepath.Join(c.Dir, "fork.log"),
		"-o", "-c listen_addresses='' -k "+c.SockDir+" -p "+strconv.Itoa(forkPort)); err != nil {
		t.Fatalf("start fork: %v\n%s", err, out)
	}
	defer c.Run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", forkDir)
	forkURL := c.URL(db)
	forkURL = replacePort(forkURL, c.Port, forkPort)

	// The source keeps changing after the fork; copy from the fork meanwhile.
	time.Sleep(300 * time.Millisecond)
	deltaCopy(t, forkURL, dst.URL, `"App Data"."Accts"`, "public.items", "public.logs")
	pos := pgdeltaOut(t, "position", "--fork", "--source", forkURL, "--verbose")
	close(stop)
	wg.Wait()
	cmd := exec.Command("pgdelta", "sync", "--source", srcURL, "--target", dst.URL, "--from", pos, "--until-caught-up")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pgdelta sync: %v\n%s", err, out)
	}
	if out, err := exec.Command("pgdelta", "status", "--source", srcURL, "--target", dst.URL).CombinedOutput(); err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	pgtest.RequireSameData(t, srcURL, dst.URL, "pgferry")
}

func replacePort(url string, from, to int) string {
	f, tt := "port="+strconv.Itoa(from), "port="+strconv.Itoa(to)
	for i := 0; i+len(f) <= len(url); i++ {
		if url[i:i+len(f)] == f {
			return url[:i] + tt + url[i+len(f):]
		}
	}
	return url
}
