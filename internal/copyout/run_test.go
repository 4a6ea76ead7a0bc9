package copyout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/progress"
	"github.com/pgferry/pgferry/internal/retry"
	"github.com/pgferry/pgferry/internal/stream"
)

// fixture is the test schema. Order Items has a generated column on PostgreSQL 12+ (none before):
// its stored columns are the same either way.
func fixture(db *pgtest.DB) string {
	total := ""
	if db.Cluster.Version >= 120000 {
		total = `total int GENERATED ALWAYS AS ("Qty" * 2) STORED, `
	}
	return strings.Replace(fixtureSQL, "{{total}}", total, 1)
}

const fixtureSQL = `
CREATE SCHEMA "App Data";
CREATE TABLE "App Data"."Order Items"(id bigint PRIMARY KEY, "Qty" int, {{total}}note text);
INSERT INTO "App Data"."Order Items"(id, "Qty", note) SELECT i, i % 7, CASE WHEN i % 5 = 0 THEN NULL WHEN i % 5 = 1 THEN '' ELSE E'a\tb\nc\\d é ' || i END FROM generate_series(1, 6000) i;
CREATE TABLE parent(id int PRIMARY KEY, v text);
CREATE TABLE child(extra text) INHERITS (parent);
INSERT INTO parent SELECT i, 'p' || i FROM generate_series(1, 10) i;
INSERT INTO child SELECT i, 'c' || i, 'x' FROM generate_series(100, 104) i;
CREATE TABLE ev(id int, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE ev_2024 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE ev_2025 PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO ev SELECT i, '2024-01-01'::date + (i % 700) FROM generate_series(1, 3000) i;
CREATE UNLOGGED TABLE ul(id int PRIMARY KEY);
INSERT INTO ul SELECT generate_series(1, 50);
CREATE TABLE heap(a int, b text);
INSERT INTO heap SELECT i, repeat('h', 50) FROM generate_series(1, 8000) i;
CREATE TABLE empty(id int PRIMARY KEY);
CREATE SCHEMA st;
CREATE TABLE st.copy_chunks(x int);
ANALYZE;
`

var fixtureTables = []string{"App Data.Order Items", "public.child", "public.empty", "public.ev_2024", "public.ev_2025", "public.heap", "public.parent", "public.ul"}

// registerAll installs capture of every fixture table (pgtrig install's engine), so the copy's
// capture checks find them registered.
func registerAll(t *testing.T, db *pgtest.DB) {
	t.Helper()
	conn := connect(t, db.URL)
	f := catalog.Filter{Tables: []string{`"App Data"."Order Items"`, "public.child", "public.empty", "public.ev", "public.heap", "public.parent", "public.ul"}}
	if _, err := capture.Install(context.Background(), conn, capture.InstallOptions{Filter: f}); err != nil {
		t.Fatalf("install capture: %v", err)
	}
}

// copied is a stream read back.
type copied struct {
	h      *stream.Header
	rows   map[string][]string
	chunks map[string]map[int]*stream.ChunkSummary
	frames int
}

func readBack(t *testing.T, b []byte) *copied {
	t.Helper()
	r, err := stream.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out := &copied{h: r.Header(), rows: map[string][]string{}, chunks: map[string]map[int]*stream.ChunkSummary{}}
	for {
		f, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		switch f.Kind {
		case stream.KindData:
			out.frames++
			if !bytes.HasSuffix(f.Data, []byte("\n")) {
				t.Fatalf("%s chunk %d frame %d does not end on a row boundary", f.Name, f.Chunk, f.Seq)
			}
			out.rows[f.Name] = append(out.rows[f.Name], strings.Split(strings.TrimSuffix(string(f.Data), "\n"), "\n")...)
		case stream.KindChunkEnd:
			if out.chunks[f.Name] == nil {
				out.chunks[f.Name] = map[int]*stream.ChunkSummary{}
			}
			out.chunks[f.Name][f.Chunk] = f.Summary
		}
		f.Release()
	}
	for _, v := range out.rows {
		sort.Strings(v)
	}
	return out
}

// sourceRows returns the rows of exactly table key (ONLY, stored columns, in attnum order), sorted.
func sourceRows(t *testing.T, conn *pgx.Conn, key string, cols []string) []string {
	t.Helper()
	tb, _ := ident.ParseKey(key)
	var buf strings.Builder
	if _, err := conn.PgConn().CopyTo(context.Background(), &buf, fmt.Sprintf("COPY (SELECT %s FROM ONLY %s) TO STDOUT", ident.QuoteList(cols), tb.String())); err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(buf.String(), "\n")
	if s == "" {
		return nil
	}
	l := strings.Split(s, "\n")
	sort.Strings(l)
	return l
}

// heapSplit is how the keyless fixture table heap is split: by ctid ranges where the source scans
// them by range (PostgreSQL 14+); before, not at all ("", one chunk: each ctid range would read
// the whole table).
func heapSplit(db *pgtest.DB) string {
	if db.Cluster.Version >= 140000 {
		return KindCtid
	}
	return ""
}

func runCopy(t *testing.T, cfg Config) (*copied, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), cfg, &out, &errb)
	if err != nil {
		return nil, errb.String(), err
	}
	return readBack(t, out.Bytes()), errb.String(), nil
}

func baseConfig(url string) Config {
	// Text, so the tests can read the rows back; format_test.go covers binary.
	return Config{Source: url, Jobs: 4, SplitSize: 64 << 10, Codec: "lz4", Format: FormatText, CaptureSchema: "pgferry", StateSchema: "st",
		Progress: progress.None, FrameSize: 8 << 10}
}

var positionRE = regexp.MustCompile(`^\d+:\d+:(\d+(,\d+)*)?$`)

func TestRunCopiesEverySelectedTable(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, fixture(db))
	registerAll(t, db)
	conn := connect(t, db.URL)
	for _, mode := range []string{SnapshotShared, SnapshotPerChunk} {
		for _, codec := range []string{"lz4", "none", "zstd:3", "gzip"} {
			if mode == SnapshotPerChunk && codec != "lz4" {
				continue
			}
			t.Run(mode+"/"+codec, func(t *testing.T) {
				cfg := baseConfig(db.URL)
				cfg.OneOff, cfg.SnapshotMode, cfg.Codec = mode == SnapshotShared, mode, codec
				c, _, err := runCopy(t, cfg)
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, tb := range c.h.Tables {
					names = append(names, tb.Name)
				}
				if got, want := strings.Join(names, ","), strings.Join(fixtureTables, ","); got != want {
					t.Fatalf("tables\n got %s\nwant %s", got, want)
				}
				if !positionRE.MatchString(c.h.Position) || c.h.SnapshotMode != mode || c.h.Jobs != 4 {
					t.Fatalf("header %+v", c.h)
				}
				split := map[string]string{}
				for _, tb := range c.h.Tables {
					want := sourceRows(t, conn, tb.Name, tb.Columns)
					if got := c.rows[tb.Name]; strings.Join(got, "\n") != strings.Join(want, "\n") {
						t.Errorf("%s: stream has %d rows, source %d (or contents differ)", tb.Name, len(got), len(want))
					}
					if len(c.chunks[tb.Name]) != len(tb.Chunks) {
						t.Errorf("%s: %d chunk ends for %d chunks", tb.Name, len(c.chunks[tb.Name]), len(tb.Chunks))
					}
					var rows int64
					for _, ch := range tb.Chunks {
						s := c.chunks[tb.Name][ch.ID]
						if s == nil {
							continue
						}
						rows += s.Rows
						shared := mode == SnapshotShared || ch.Kind == KindCtid
						if shared && s.Snapshot != c.h.Position {
							t.Errorf("%s chunk %d read under %q, want the shared %q", tb.Name, ch.ID, s.Snapshot, c.h.Position)
						}
						if !positionRE.MatchString(s.Snapshot) {
							t.Errorf("%s chunk %d snapshot %q", tb.Name, ch.ID, s.Snapshot)
						}
					}
					if rows != int64(len(c.rows[tb.Name])) {
						t.Errorf("%s: chunk ends count %d rows, data has %d", tb.Name, rows, len(c.rows[tb.Name]))
					}
					if len(tb.Chunks) > 1 {
						split[tb.Name] = tb.Chunks[0].Kind
					}
				}
				if split["App Data.Order Items"] != KindKey || split["public.heap"] != heapSplit(db) {
					t.Errorf("expected the big tables split by key and %q: %v", heapSplit(db), split)
				}
				oi := c.h.Tables[0]
				if strings.Join(oi.Columns, ",") != "id,Qty,note" || strings.Join(oi.Key, ",") != "id" {
					t.Errorf("Order Items columns %v key %v (generated column must be left out)", oi.Columns, oi.Key)
				}
				if n := len(c.rows["public.parent"]); n != 10 {
					t.Errorf("parent: %d rows, want its own 10 (ONLY)", n)
				}
				if c.frames < 10 {
					t.Errorf("only %d frames: the frame size was not applied", c.frames)
				}
			})
		}
	}
}

func TestRunFilters(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, fixture(db))
	cfg := baseConfig(db.URL)
	cfg.OneOff = true
	cfg.Filter.Tables = []string{"ev", `"App Data".*`}
	c, _, err := runCopy(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tb := range c.h.Tables {
		names = append(names, tb.Name)
	}
	if got := strings.Join(names, ","); got != "App Data.Order Items,public.ev_2024,public.ev_2025" {
		t.Fatalf("tables %s", got)
	}
	cfg.Filter.Tables = []string{"nothing*"}
	if _, _, err := runCopy(t, cfg); err == nil || err.Error() != "no table matches -t 'nothing*'" {
		t.Fatalf("err = %v", err)
	}
}

func TestInvariantOne(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, fixture(db))
	cfg := baseConfig(db.URL)

	var out, errb bytes.Buffer
	err := Run(context.Background(), cfg, &out, &errb)
	if err == nil {
		t.Fatal("copy without capture succeeded")
	}
	if out.Len() != 0 {
		t.Fatalf("refused copy wrote %d bytes to stdout", out.Len())
	}
	var rep bytes.Buffer
	if code := cliutil.Report(&rep, "pgcopyout", err); code != 1 || !strings.Contains(rep.String(), "pgtrig install") || !strings.Contains(rep.String(), "--one-off") ||
		!strings.Contains(rep.String(), "App Data.Order Items") || !strings.Contains(rep.String(), "public.ev") || strings.Contains(rep.String(), "ev_2024") {
		t.Fatalf("exit %d, message:\n%s", code, rep.String())
	}

	// A registry row committed after the snapshot does not count.
	ctx := context.Background()
	conn := connect(t, db.URL)
	coord, err := beginSnapshot(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	registerAll(t, db)
	tables, err := selectTables(ctx, conn, cfg.Filter, "pgferry", "st")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkCapture(ctx, conn, "pgferry", tables); err == nil {
		t.Fatal("capture committed after the snapshot was accepted")
	}
	coord.release(ctx)

	// Registered before the snapshot: accepted; a missing one is named.
	if _, _, err := runCopy(t, cfg); err != nil {
		t.Fatalf("copy with capture registered: %v", err)
	}
	db.Exec(t, "DELETE FROM pgferry.capture_tables WHERE table_name = 'public.heap'")
	_, _, err = runCopy(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "1 table(s): public.heap") {
		t.Fatalf("err = %v", err)
	}
}

func TestProgressJSON(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, fixture(db))
	cfg := baseConfig(db.URL)
	cfg.OneOff, cfg.Progress = true, progress.JSON
	c, stderr, err := runCopy(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, r := range c.rows {
		total += int64(len(r))
	}
	done := map[string]int64{}
	var final map[string]any
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("stderr line is not json: %q", l)
		}
		switch m["event"] {
		case "table_done":
			done[m["table"].(string)] = int64(m["rows"].(float64))
		case "done":
			final = m
		}
	}
	for _, name := range fixtureTables {
		if _, ok := done[name]; !ok {
			t.Errorf("no table_done for %s", name)
		}
		if done[name] != int64(len(c.rows[name])) {
			t.Errorf("%s: progress says %d rows, stream has %d", name, done[name], len(c.rows[name]))
		}
	}
	if final == nil || int64(final["rows"].(float64)) != total || int(final["tables_done"].(float64)) != len(fixtureTables) {
		t.Fatalf("final progress %v, want %d rows", final, total)
	}
}

func TestResumeFromTarget(t *testing.T) {
	src := pgtest.Source(t)
	src.Exec(t, fixture(src))
	dst := pgtest.Target(t)
	cfg := baseConfig(src.URL)
	cfg.OneOff = true
	first, _, err := runCopy(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The target holds the first run's plan of Order Items and two of its chunks; a different plan
	// would come out of planning now (bigger split size), so reuse is visible.
	oi := first.h.Tables[0]
	if len(oi.Chunks) < 3 {
		t.Fatalf("Order Items not split: %+v", oi.Chunks)
	}
	dst.Exec(t, `CREATE SCHEMA st;
CREATE TABLE st.copy_chunks(table_name text, chunk int, snapshot text NOT NULL, rows bigint NOT NULL, bytes bigint NOT NULL, done_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (table_name, chunk));
CREATE TABLE st.copy_plan(table_name text, chunk int, kind text NOT NULL, lower_bound text, upper_bound text, PRIMARY KEY (table_name, chunk));`)
	dconn := connect(t, dst.URL)
	ctx := context.Background()
	for _, ch := range oi.Chunks {
		if _, err := dconn.Exec(ctx, "INSERT INTO st.copy_plan VALUES ($1, $2, $3, $4, $5)", oi.Name, ch.ID, ch.Kind, ch.Lower, ch.Upper); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dconn.Exec(ctx, "INSERT INTO st.copy_chunks(table_name, chunk, snapshot, rows, bytes) VALUES ($1, 0, '1:1:', 0, 0), ($1, 2, '1:1:', 0, 0), ('public.ul', 0, '1:1:', 0, 0)", oi.Name); err != nil {
		t.Fatal(err)
	}
	cfg.Target = dst.URL
	cfg.SplitSize = 1 << 30
	second, _, err := runCopy(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	oi2 := second.h.Tables[0]
	if len(oi2.Chunks) != len(oi.Chunks) {
		t.Fatalf("plan not reused: %d chunks, first run %d", len(oi2.Chunks), len(oi.Chunks))
	}
	for i, ch := range oi2.Chunks {
		wantSkip := ch.ID == 0 || ch.ID == 2
		if ch.Skip != wantSkip || str(ch.Lower)+"|"+str(ch.Upper) != str(oi.Chunks[i].Lower)+"|"+str(oi.Chunks[i].Upper) {
			t.Errorf("chunk %d: %+v (skip want %v)", i, ch, wantSkip)
		}
		if _, ended := second.chunks[oi.Name][ch.ID]; ended == wantSkip {
			t.Errorf("chunk %d: ended=%v but skip=%v", ch.ID, ended, wantSkip)
		}
	}
	// Skipped + copied = everything, with no row twice.
	rows := second.rows[oi.Name]
	if int64(len(rows)) != first.chunks[oi.Name][1].Rows+sumRows(first, oi, 3) {
		t.Errorf("second run copied %d rows of Order Items", len(rows))
	}
	all := append(append([]string{}, rows...), chunkRows(t, src.URL, oi, 0, 2)...)
	sort.Strings(all)
	if want := sourceRows(t, connect(t, src.URL), oi.Name, oi.Columns); strings.Join(all, "\n") != strings.Join(want, "\n") {
		t.Errorf("skipped chunks plus copied chunks are not exactly the table: %d rows vs %d", len(all), len(want))
	}
	if len(second.rows["public.ul"]) != 0 || !second.h.Tables[len(second.h.Tables)-1].Chunks[0].Skip {
		t.Errorf("ul was loaded already and must be skipped")
	}

	// A ctid-split table partly loaded cannot be finished under a new snapshot: it is planned
	// afresh, copied whole and marked Restart for pgcopyin.
	heap := first.h.Tables[5]
	if heap.Name != "public.heap" || (heapSplit(src) == KindCtid) != (heap.Chunks[0].Kind == KindCtid) {
		t.Fatalf("heap %+v", heap)
	}
	if heapSplit(src) == "" {
		// Before 14 pgcopyout plans no ctid ranges; a plan of an earlier run may still hold them.
		lo, hi := "(2,0)", "(2,0)"
		heap.Chunks = []stream.Chunk{{ID: 0, Kind: KindCtid, Upper: &hi}, {ID: 1, Kind: KindCtid, Lower: &lo}}
	}
	for _, ch := range heap.Chunks {
		dconn.Exec(ctx, "INSERT INTO st.copy_plan VALUES ($1, $2, $3, $4, $5)", heap.Name, ch.ID, ch.Kind, ch.Lower, ch.Upper)
	}
	dconn.Exec(ctx, "INSERT INTO st.copy_chunks(table_name, chunk, snapshot, rows, bytes) VALUES ('public.heap', 1, '1:1:', 0, 0)")
	third, errOut, err := runCopy(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h3 := third.h.Tables[5]
	if !h3.Restart || len(h3.Chunks) != 1 || h3.Chunks[0].Skip || !strings.Contains(errOut, "public.heap was split by ctid ranges") {
		t.Fatalf("partly loaded ctid table: %+v, stderr %q", h3, errOut)
	}
	if got, want := strings.Join(third.rows["public.heap"], "\n"), strings.Join(sourceRows(t, connect(t, src.URL), "public.heap", h3.Columns), "\n"); got != want {
		t.Errorf("restarted heap not copied whole")
	}
	if third.h.Tables[0].Restart {
		t.Errorf("a key-split table must not restart")
	}
	// A plan by key ranges for a table that has no key any more is refused, not guessed at.
	dconn.Exec(ctx, "DELETE FROM st.copy_chunks WHERE table_name = 'public.heap'")
	dconn.Exec(ctx, "UPDATE st.copy_plan SET kind = 'key' WHERE table_name = 'public.heap'")
	_, _, err = runCopy(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "public.heap was planned by key ranges in an earlier run but has no usable key now") {
		t.Fatalf("err = %v", err)
	}
}

// chunkRows reads the rows of the given chunks of tb straight from the source.
func chunkRows(t *testing.T, url string, tb stream.Table, ids ...int) []string {
	t.Helper()
	conn := connect(t, url)
	ct := table(t, conn, tb.Name)
	var out []string
	for _, ch := range tb.Chunks {
		for _, id := range ids {
			if ch.ID != id {
				continue
			}
			var buf strings.Builder
			c := Chunk{ID: ch.ID, Kind: ch.Kind, Lower: ch.Lower, Upper: ch.Upper}
			if _, err := conn.PgConn().CopyTo(context.Background(), &buf, c.CopySQL(ct)); err != nil {
				t.Fatal(err)
			}
			if s := strings.TrimSuffix(buf.String(), "\n"); s != "" {
				out = append(out, strings.Split(s, "\n")...)
			}
		}
	}
	return out
}

// sumRows adds the rows of the chunks of tb from id on in c.
func sumRows(c *copied, tb stream.Table, from int) int64 {
	var n int64
	for _, ch := range tb.Chunks {
		if ch.ID >= from {
			n += c.chunks[tb.Name][ch.ID].Rows
		}
	}
	return n
}

func TestRetryLostConnection(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, fixture(db))
	cfg := baseConfig(db.URL)
	cfg.OneOff = true
	cfg.Retry = &retry.Policy{Attempts: 3, Base: 10 * time.Millisecond}
	var killed atomic.Int64
	// Before any frame of a chunk: the chunk is redone on a new connection. The chunk is a ctid
	// range where the source has them (14+), else a key range.
	victim := "public.heap"
	if heapSplit(db) == "" {
		victim = "App Data.Order Items"
	}
	testHook = func(point string, conn *pgx.Conn, j *job) {
		if point == "begin" && j.tp.Key() == victim && j.c.ID == 1 && killed.Add(1) == 1 {
			terminate(t, db.URL, int(conn.PgConn().PID()))
		}
	}
	defer func() { testHook = nil }()
	c, stderr, err := runCopy(t, cfg)
	if err != nil {
		t.Fatalf("copy with one lost connection: %v\n%s", err, stderr)
	}
	if killed.Load() < 2 {
		t.Fatalf("chunk was not redone (hook ran %d times)", killed.Load())
	}
	if !strings.Contains(stderr, "retrying") {
		t.Errorf("no retry message on stderr: %q", stderr)
	}
	conn := connect(t, db.URL)
	for _, tb := range c.h.Tables {
		if strings.Join(c.rows[tb.Name], "\n") != strings.Join(sourceRows(t, conn, tb.Name, tb.Columns), "\n") {
			t.Errorf("%s differs after the retry", tb.Name)
		}
	}

	// After a frame of the chunk was written: no retry, a message that says to re-run. The chunk
	// is bigger than the socket buffers, so the server is still sending when it is terminated.
	db.Exec(t, "CREATE TABLE wide(id int PRIMARY KEY, pad text); INSERT INTO wide SELECT i, repeat('w', 200) FROM generate_series(1, 40000) i")
	cfg.Filter.Tables = []string{"wide"}
	cfg.SplitSize = 1 << 30
	killed.Store(0)
	testHook = func(point string, conn *pgx.Conn, j *job) {
		if point == "begin" {
			pidOf.Store(int64(conn.PgConn().PID()))
		}
		if point == "frame" && killed.Add(1) == 1 {
			terminate(t, db.URL, int(pidOf.Load()))
			time.Sleep(50 * time.Millisecond)
		}
	}
	cfg.FrameSize = 512
	var out, errb bytes.Buffer
	err = Run(context.Background(), cfg, &out, &errb)
	var pe *partialError
	if err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), "copy table public.wide chunk 0: failed after part of it was streamed") {
		t.Fatalf("err = %v", err)
	}
	if _, rerr := stream.NewReader(bytes.NewReader(out.Bytes())); rerr == nil {
		r, _ := stream.NewReader(bytes.NewReader(out.Bytes()))
		for {
			f, err := r.Next()
			if err == io.EOF {
				t.Fatal("a failed copy's stream ends with a valid End frame")
			}
			if err != nil {
				break
			}
			f.Release()
		}
	}
}

var pidOf atomic.Int64

// terminate ends the backend pid from another session, as a server restart or a proxy would.
func terminate(t *testing.T, url string, pid int) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Error(err)
	}
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Codec: "brotli", Jobs: 1}, "codec"},
		{Config{Codec: "lz4", Jobs: 0}, "--jobs"},
		{Config{Codec: "lz4", Jobs: 1, SnapshotMode: "sometimes"}, "--snapshot"},
		{Config{Codec: "lz4", Jobs: 1, SnapshotMode: SnapshotPerChunk, OneOff: true}, "cannot be combined with --one-off"},
	} {
		err := Run(context.Background(), tc.cfg, io.Discard, io.Discard)
		var ee *cliutil.ExitError
		if !errors.As(err, &ee) || ee.Code != cliutil.ExitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v", tc.cfg, err)
		}
	}
}
