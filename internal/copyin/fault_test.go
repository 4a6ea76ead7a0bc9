package copyin

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/state"
	"github.com/pgferry/pgferry/internal/stream"
)

// killOnce terminates the backend of the first chunk that reaches its commit.
func killOnce(t *testing.T, url string) *int {
	var once sync.Once
	killed := new(int)
	testHookBeforeCommit = func(pid uint32, table string, chunk int) {
		once.Do(func() {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend($1, 5000)", int(pid)); err != nil {
				t.Error(err)
			}
			*killed = chunk
			time.Sleep(50 * time.Millisecond)
		})
	}
	t.Cleanup(func() { testHookBeforeCommit = nil })
	return killed
}

func TestDirRetriesLostConnection(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, typesDDL(src))
	dst.Exec(t, typesDDL(dst)+`TRUNCATE "Sales Dept"."Order Lines", public.small;`)
	dir := t.TempDir()
	var h *stream.Header
	makeStream(t, src.URL, typesTables, 2, "zstd", &lazyDir{t: t, dir: dir, h: &h}, &h)
	killOnce(t, dst.URL)
	err, stderr := load(t, dst.URL, nil, Config{InputDir: dir, Jobs: 2})
	if err != nil {
		t.Fatalf("load: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "retrying") {
		t.Errorf("no retry reported: %s", stderr)
	}
	sameRows(t, src.URL, dst.URL)
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM pgferry.copy_chunks"); n != 6 {
		t.Errorf("%d chunks recorded, want 6", n)
	}
	// A damaged chunk file is refused, naming it, and not retried.
	dst2 := pgtest.Target(t)
	dst2.Exec(t, typesDDL(dst2)+`TRUNCATE "Sales Dept"."Order Lines", public.small;`)
	corruptFile(t, dir+"/"+stream.ChunkFile(0, 1))
	testHookBeforeCommit = nil
	err, stderr = load(t, dst2.URL, nil, Config{InputDir: dir, Jobs: 2})
	if err == nil || !strings.Contains(stderr, "table Sales Dept.Order Lines chunk 1: corrupt stream") || strings.Contains(stderr, "retrying") {
		t.Errorf("damaged chunk file: %v\n%s", err, stderr)
	}
	if n := queryInt(t, dst2.URL, `SELECT count(*) FROM "Sales Dept"."Order Lines" WHERE id >= 300 AND id < 600`); n != 0 {
		t.Errorf("%d rows of the damaged chunk committed", n)
	}
}

func TestStreamLostConnection(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, typesDDL(src))
	dst.Exec(t, typesDDL(dst)+`TRUNCATE "Sales Dept"."Order Lines", public.small;`)
	in := streamBytes(t, src.URL, typesTables, 2)
	killOnce(t, dst.URL)
	err, stderr := load(t, dst.URL, in, Config{})
	if err == nil || !strings.Contains(stderr, "lost the target connection") || !strings.Contains(stderr, "re-run the whole pipeline") {
		t.Fatalf("lost connection on a stream: %v\n%s", err, stderr)
	}
	testHookBeforeCommit = nil
	if err, stderr := load(t, dst.URL, in, Config{}); err != nil {
		t.Fatalf("re-run: %v\n%s", err, stderr)
	}
	sameRows(t, src.URL, dst.URL)
}

func TestCopyPosition(t *testing.T) {
	dst := pgtest.Target(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dst.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, ok, err := state.CopyPosition(ctx, conn, "pgferry"); ok || err != nil {
		t.Fatalf("no state schema: ok=%v err=%v", ok, err)
	}
	if err := state.Ensure(ctx, conn, "pgferry"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := state.CopyPosition(ctx, conn, "pgferry"); ok || err != nil {
		t.Fatalf("no chunks: ok=%v err=%v", ok, err)
	}
	// Text order would pick "900:..."; txid order must pick the oldest, 1000 < 10000 < 900 as text.
	dst.Exec(t, `INSERT INTO pgferry.copy_chunks (table_name, chunk, snapshot, rows, bytes) VALUES
		('a.b', 0, '10000:10005:', 1, 1), ('a.b', 1, '1000:1012:1003,1007', 1, 1), ('c.d', 0, '9000:9001:', 1, 1)`)
	pos, ok, err := state.CopyPosition(ctx, conn, "pgferry")
	if err != nil || !ok || pos != "1000:1012:1003,1007" {
		t.Fatalf("CopyPosition = %q, %v, %v; want the oldest snapshot", pos, ok, err)
	}
}

// lazyDir is a DirWriter created once makeStream has built the header.
type lazyDir struct {
	t   testing.TB
	dir string
	h   **stream.Header
	w   *stream.DirWriter
}

func (l *lazyDir) get() *stream.DirWriter {
	if l.w == nil {
		w, err := stream.NewDirWriter(l.dir, *l.h)
		if err != nil {
			l.t.Fatal(err)
		}
		l.w = w
	}
	return l.w
}
func (l *lazyDir) WriteData(ti, c, seq int, raw, comp []byte) error {
	return l.get().WriteData(ti, c, seq, raw, comp)
}
func (l *lazyDir) EndChunk(ti, c int, s stream.ChunkSummary) error {
	return l.get().EndChunk(ti, c, s)
}
func (l *lazyDir) Close() error { return l.get().Close() }
