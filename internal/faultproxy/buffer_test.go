package faultproxy

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/pgtest"
)

// report renders err as the operator sees it on stderr.
func report(tool string, err error) string {
	var b bytes.Buffer
	cliutil.Report(&b, tool, err)
	return b.String()
}

// TestChunkPastRetryBuffer: a connection lost mid-chunk after more than --retry-buffer of it went
// by cannot be retried within the stream: the pipeline stops, the message says what to re-run, and
// re-running it with --target resumes, ending with every row on the target exactly once.
func TestChunkPastRetryBuffer(t *testing.T) {
	src, dst := setup(t)
	ocfg, icfg := configs(src, dst)
	ocfg.RetryBuffer, icfg.RetryBuffer = 16<<10, 16<<10
	stop := throttle(t, src.proxy, 1500)
	defer stop()

	// 1. the source side: every connection resets, every 300ms once a chunk is loaded, until one
	// lands in a chunk that has streamed more than --retry-buffer (one between chunks is retried)
	ended := make(chan struct{})
	go func() {
		waitLoaded(dst)
		for {
			select {
			case <-ended:
				return
			case <-time.After(300 * time.Millisecond):
				src.proxy.ResetAll()
			}
		}
	}()
	oerr, ierr, outLog, inLog := runPipeline(t, ocfg, icfg, 90*time.Second)
	close(ended)
	if oerr == nil {
		t.Fatalf("the copy survived a reset past --retry-buffer: did the fault land?\n%s\n%s", outLog, inLog)
	}
	msg := report("pgcopyout", oerr)
	t.Logf("the operator sees:\n%s%s", msg, report("pgcopyin", ierr))
	if !strings.Contains(msg, "failed after part of it was streamed") || !strings.Contains(msg, "hint: re-run the copy with --target: 'pgcopyout --target TARGET") {
		t.Errorf("pgcopyout's message does not say what to re-run:\n%s", msg)
	}
	first, _ := countChunks(dst.direct)

	// 2. the re-run, told the target, resumes; now the target side resets mid-chunk
	ocfg.Target = dst.url
	go func() {
		for n := first; n <= first; n, _ = countChunks(dst.direct) {
			time.Sleep(20 * time.Millisecond)
		}
		dst.proxy.ResetAll()
	}()
	oerr, ierr, outLog, inLog = runPipeline(t, ocfg, icfg, 90*time.Second)
	if !strings.Contains(inLog+outLog, "resuming") && !strings.Contains(inLog, "skipped") {
		t.Errorf("the re-run did not resume:\n%s\n%s", outLog, inLog)
	}
	if ierr != nil {
		msg := report("pgcopyin", ierr)
		t.Logf("the operator sees:\n%s%s", report("pgcopyout", oerr), msg)
		if !strings.Contains(msg, "hint: ") || !strings.Contains(msg, "re-run") {
			t.Errorf("pgcopyin's message does not say what to re-run:\n%s", msg)
		}
		// 3. and once more, with no fault
		stop()
		if oerr, ierr, outLog, inLog = runPipeline(t, ocfg, icfg, 90*time.Second); oerr != nil || ierr != nil {
			t.Fatalf("third run: pgcopyout: %v; pgcopyin: %v\n%s\n%s", oerr, ierr, outLog, inLog)
		}
	} else if oerr != nil {
		t.Fatalf("pgcopyout failed but pgcopyin did not: %v", oerr)
	}
	pgtest.RequireSameData(t, src.direct, dst.direct, "pgferry")
	if n := pgtest.QueryInt(t, dst.direct, "SELECT count(*) - count(DISTINCT (table_name, chunk)) FROM pgferry.copy_chunks"); n != 0 {
		t.Errorf("%d chunks recorded twice", n)
	}
}
