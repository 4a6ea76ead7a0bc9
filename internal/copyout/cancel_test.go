package copyout

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/stream"
)

// TestCancelMidCopy: a cancelled copy (SIGINT) stops, reports the interruption, and leaves a
// stream without an End frame, which the reader rejects as truncated.
func TestCancelMidCopy(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, fixture(db))
	cfg := baseConfig(db.URL)
	cfg.OneOff, cfg.FrameSize = true, 1024
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	testHook = func(point string, conn *pgx.Conn, j *job) {
		if point == "frame" {
			once.Do(cancel)
		}
	}
	defer func() { testHook = nil }()
	var out, errb bytes.Buffer
	err := Run(ctx, cfg, &out, &errb)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want cancellation", err)
	}
	var rep bytes.Buffer
	if code := cliutil.Report(&rep, "pgcopyout", err); code != 130 || !strings.Contains(rep.String(), "interrupted") {
		t.Fatalf("exit %d: %s", code, rep.String())
	}
	r, err := stream.NewReader(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for {
		f, err := r.Next()
		if err == io.EOF {
			t.Fatal("the stream of a cancelled copy ends with a valid End frame")
		}
		if err != nil {
			if !errors.Is(err, stream.ErrTruncated) {
				t.Fatalf("want a truncation error, got %v", err)
			}
			break
		}
		f.Release()
	}
	// No source session is left behind (a closed session's backend may take a moment to exit).
	conn := connect(t, db.URL)
	var left int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgferry-pgcopyout' AND datname = current_database()").Scan(&left)
		if left == 0 || time.Now().After(deadline) {
			break
		}
	}
	if left != 0 {
		t.Errorf("%d pgcopyout sessions still open", left)
	}
}

// TestPerChunkReleasesSnapshot: with --snapshot per-chunk and only key-range chunks, the
// coordinator's transaction ends before the chunks are read, so it does not hold back vacuum.
func TestPerChunkReleasesSnapshot(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, fixture(db))
	cfg := baseConfig(db.URL)
	registerAll(t, db)
	cfg.SnapshotMode, cfg.Jobs = SnapshotPerChunk, 1
	cfg.Filter.Tables = []string{`"App Data"."Order Items"`}
	var mu sync.Mutex
	var states []string
	testHook = func(point string, conn *pgx.Conn, j *job) {
		if point != "begin" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		c, err := pgx.Connect(context.Background(), db.URL)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(context.Background())
		var s string
		// The other pgcopyout sessions (the worker is this one) must hold no snapshot.
		c.QueryRow(context.Background(), `SELECT coalesce(string_agg(state || ':' || (backend_xmin IS NOT NULL)::text, ','), '')
			FROM pg_stat_activity WHERE application_name = 'pgferry-pgcopyout' AND datname = current_database() AND pid <> $1`, conn.PgConn().PID()).Scan(&s)
		states = append(states, s)
	}
	defer func() { testHook = nil }()
	c, _, err := runCopy(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.h.Tables[0].Chunks); n < 3 {
		t.Fatalf("%d chunks", n)
	}
	for i, s := range states {
		if strings.Contains(s, "true") || strings.Contains(s, "in transaction") {
			t.Errorf("chunk %d: coordinator still holds its snapshot: %s", i, s)
		}
	}
}

// TestRowBiggerThanAFrame: a single row larger than the biggest frame is split across frames
// (readers do not rely on row boundaries) and arrives whole.
func TestRowBiggerThanAFrame(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, `CREATE TABLE fat(id int PRIMARY KEY, body text);
INSERT INTO fat VALUES (1, repeat('abcdefgh', 2150000)), (2, 'small'), (3, repeat(E'\t', 10));`)
	cfg := baseConfig(db.URL)
	cfg.OneOff = true
	var out, errb bytes.Buffer
	if err := Run(context.Background(), cfg, &out, &errb); err != nil {
		t.Fatal(err)
	}
	r, err := stream.NewReader(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var data bytes.Buffer
	frames := 0
	for {
		f, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Kind == stream.KindData {
			frames++
			if len(f.Data) > stream.MaxFrameSize {
				t.Fatalf("frame of %d bytes", len(f.Data))
			}
			data.Write(f.Data)
		}
		f.Release()
	}
	var want strings.Builder
	conn := connect(t, db.URL)
	if _, err := conn.PgConn().CopyTo(context.Background(), &want, `COPY fat (id, body) TO STDOUT`); err != nil {
		t.Fatal(err)
	}
	if frames < 2 || data.String() != want.String() {
		t.Fatalf("%d frames, %d bytes; want more than one frame and the %d bytes of COPY", frames, data.Len(), want.Len())
	}
}
