package copyin

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/state"
	"github.com/pgferry/pgferry/internal/stream"
)

// handStream writes a stream of table public.a (id int) with the given chunks' data and row counts.
func handStream(t *testing.T, snapshots []string, data []string, rows []int64) []byte {
	t.Helper()
	h := &stream.Header{Position: "500:510:505", SnapshotMode: "per-chunk", Jobs: 2, Codec: "none",
		Tables: []stream.Table{{Name: "public.a", Columns: []string{"id"}}}}
	for i := range data {
		h.Tables[0].Chunks = append(h.Tables[0].Chunks, stream.Chunk{ID: i, Kind: "key"})
	}
	var buf bytes.Buffer
	w, err := stream.NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range data {
		if d != "" {
			if err := w.WriteData(0, i, 0, []byte(d), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.EndChunk(0, i, stream.ChunkSummary{Rows: rows[i], Snapshot: snapshots[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestChunkProblemsRollBack(t *testing.T) {
	snaps := []string{"700:700:", "600:650:601", "800:801:"}
	for _, c := range []struct {
		name string
		data []string
		rows []int64
		want string
	}{
		{"row count differs", []string{"1\n2\n", "3\n4\n", "5\n"}, []int64{2, 3, 1}, "table public.a chunk 1: COPY loaded 2 rows but the stream says the chunk holds 3"},
		{"bad data", []string{"1\n", "x\n", "5\n"}, []int64{1, 1, 1}, `table public.a chunk 1: copy: ERROR: invalid input syntax for type integer: "x"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := pgtest.Target(t)
			dst.Exec(t, "CREATE TABLE a (id int)")
			err, stderr := load(t, dst.URL, handStream(t, snaps, c.data, c.rows), Config{})
			if err == nil || !strings.Contains(stderr, c.want) {
				t.Fatalf("got %v\n%s\nwant %q", err, stderr, c.want)
			}
			if n := queryInt(t, dst.URL, "SELECT count(*) FROM a WHERE id IN (3, 4)"); n != 0 {
				t.Errorf("%d rows of the bad chunk committed", n)
			}
			if n := queryInt(t, dst.URL, "SELECT count(*) FROM pgferry.copy_chunks WHERE chunk = 1"); n != 0 {
				t.Errorf("bad chunk recorded as done")
			}
		})
	}
}

func TestPerChunkSnapshots(t *testing.T) {
	dst := pgtest.Target(t)
	dst.Exec(t, "CREATE TABLE a (id int)")
	// Chunk 2 is empty: it is still recorded, with its snapshot.
	in := handStream(t, []string{"700:700:", "600:650:601", "800:801:"}, []string{"1\n2\n", "3\n", ""}, []int64{2, 1, 0})
	if err, stderr := load(t, dst.URL, in, Config{}); err != nil {
		t.Fatalf("load: %v\n%s", err, stderr)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dst.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	pos, ok, err := state.CopyPosition(ctx, conn, "pgferry")
	if err != nil || !ok || pos != "600:650:601" {
		t.Errorf("CopyPosition = %q %v %v, want the oldest chunk snapshot 600:650:601", pos, ok, err)
	}
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM pgferry.copy_chunks WHERE (chunk, snapshot, rows) IN ((0, '700:700:', 2), (1, '600:650:601', 1), (2, '800:801:', 0))"); n != 3 {
		t.Errorf("copy_chunks rows: %d of 3 as expected", n)
	}
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM a"); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
}

func TestSkippedChunkMustBeOnTarget(t *testing.T) {
	h := &stream.Header{Position: "500:510:505", SnapshotMode: "shared", Jobs: 1, Codec: "lz4",
		Tables: []stream.Table{{Name: "public.a", Columns: []string{"id"}, Chunks: []stream.Chunk{{ID: 0, Kind: "key"}, {ID: 1, Kind: "key", Skip: true}}}}}
	var buf bytes.Buffer
	w, err := stream.NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteData(0, 0, 0, []byte("1\n"), nil)
	w.EndChunk(0, 0, stream.ChunkSummary{Rows: 1})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	dst := pgtest.Target(t)
	dst.Exec(t, "CREATE TABLE a (id int)")
	err, stderr := load(t, dst.URL, buf.Bytes(), Config{})
	if err == nil || !strings.Contains(stderr, "table public.a chunk 1: the stream skips it as already loaded, but the target has no record of it") {
		t.Errorf("gap: %v\n%s", err, stderr)
	}
	err, stderr = load(t, dst.URL, buf.Bytes(), Config{Truncate: true})
	if err == nil || !strings.Contains(stderr, "--truncate with a stream that skips chunks") {
		t.Errorf("--truncate with skipped chunks: %v\n%s", err, stderr)
	}
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM a"); n != 0 {
		t.Errorf("%d rows loaded", n)
	}
}

func TestOneLoadAtATime(t *testing.T) {
	dst := pgtest.Target(t)
	dst.Exec(t, "CREATE TABLE a (id int)")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dst.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext('pgferry-pgcopyin:' || 'pgferry'))"); err != nil {
		t.Fatal(err)
	}
	in := handStream(t, []string{"1:1:"}, []string{"1\n"}, []int64{1})
	err, stderr := load(t, dst.URL, in, Config{})
	if err == nil || !strings.Contains(stderr, "another pgcopyin is loading into this target") {
		t.Errorf("concurrent load: %v\n%s", err, stderr)
	}
	conn.Exec(ctx, "SELECT pg_advisory_unlock_all()")
	if err, stderr := load(t, dst.URL, in, Config{}); err != nil {
		t.Errorf("after unlock: %v\n%s", err, stderr)
	}
}
