package copyin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/pgver"
	"github.com/pgferry/pgferry/internal/progress"
	"github.com/pgferry/pgferry/internal/stream"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// srcTable describes a source table to put in a test stream, split by ranges of an integer column.
type srcTable struct {
	name   string // unquoted schema.table
	split  string // integer column to split on ("" = one chunk)
	bounds []int  // chunk boundaries on split: chunk i holds [bounds[i-1], bounds[i])
}

// makeStream copies tables from the source with COPY under one snapshot and writes a stream of
// small frames, interleaving jobs chunks at a time, the way pgcopyout does.
func makeStream(t testing.TB, srcURL string, tables []srcTable, jobs int, codec string, w stream.FrameWriter, hp **stream.Header) *stream.Header {
	t.Helper()
	ctx := context.Background()
	conn, err := dbconn.Connect(ctx, srcURL, dbconn.Source, dbconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	h := &stream.Header{ServerVersion: "15", SnapshotMode: "shared", Codec: codec, Jobs: jobs}
	if err := tx.QueryRow(ctx, "SELECT txid_current_snapshot()::text").Scan(&h.Position); err != nil {
		t.Fatal(err)
	}
	type chunkData struct {
		ti, id int
		data   []byte
		rows   int64
	}
	var chunks []chunkData
	for ti, st := range tables {
		tb, _ := ident.ParseKey(st.name)
		var cols []string
		if err := tx.QueryRow(ctx, `SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND `+pgver.Of(conn).StoredColumn("pg_attribute"), tb.String()).Scan(&cols); err != nil {
			t.Fatal(err)
		}
		tab := stream.Table{Name: st.name, Columns: cols}
		preds := []string{"true"}
		if st.split != "" {
			preds = nil
			for i := 0; i <= len(st.bounds); i++ {
				var p []string
				if i > 0 {
					p = append(p, fmt.Sprintf("%s >= %d", ident.Quote(st.split), st.bounds[i-1]))
				}
				if i < len(st.bounds) {
					p = append(p, fmt.Sprintf("%s < %d", ident.Quote(st.split), st.bounds[i]))
				}
				preds = append(preds, strings.Join(p, " AND "))
			}
		}
		for id, p := range preds {
			kind := "key"
			if st.split == "" {
				kind = "all"
			}
			tab.Chunks = append(tab.Chunks, stream.Chunk{ID: id, Kind: kind, Lower: strp(p)})
			var buf bytes.Buffer
			tag, err := tx.Conn().PgConn().CopyTo(ctx, &buf, fmt.Sprintf("COPY (SELECT %s FROM ONLY %s WHERE %s) TO STDOUT", ident.QuoteList(cols), tb, p))
			if err != nil {
				t.Fatal(err)
			}
			chunks = append(chunks, chunkData{ti, id, buf.Bytes(), tag.RowsAffected()})
		}
		h.Tables = append(h.Tables, tab)
	}
	if hp != nil {
		*hp = h
	}
	if w == nil {
		return h
	}
	// Interleave: at most jobs chunks open, frames of up to 700 bytes cut at arbitrary places.
	const fs = 700
	pos := make([]int, len(chunks))
	seq := make([]int, len(chunks))
	next := 0
	var open []int
	for next < len(chunks) || len(open) > 0 {
		for len(open) < jobs && next < len(chunks) {
			open = append(open, next)
			next++
		}
		var still []int
		for _, i := range open {
			c := chunks[i]
			if pos[i] >= len(c.data) {
				if err := w.EndChunk(c.ti, c.id, stream.ChunkSummary{Rows: c.rows}); err != nil {
					t.Fatal(err)
				}
				continue
			}
			end := min(pos[i]+fs, len(c.data))
			if err := w.WriteData(c.ti, c.id, seq[i], c.data[pos[i]:end], nil); err != nil {
				t.Fatal(err)
			}
			seq[i]++
			pos[i] = end
			still = append(still, i)
		}
		open = still
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return h
}

func strp(s string) *string { return &s }

// streamBytes builds the stream of tables in memory.
func streamBytes(t testing.TB, srcURL string, tables []srcTable, jobs int) []byte {
	t.Helper()
	var buf bytes.Buffer
	var h *stream.Header
	makeStream(t, srcURL, tables, jobs, "lz4", &lazyWriter{t: t, out: &buf, h: &h}, &h)
	return buf.Bytes()
}

// lazyWriter creates the stream.Writer on first use, once makeStream has built the header.
type lazyWriter struct {
	t   testing.TB
	out io.Writer
	h   **stream.Header
	w   *stream.Writer
}

func (l *lazyWriter) get() *stream.Writer {
	if l.w == nil {
		w, err := stream.NewWriter(l.out, *l.h)
		if err != nil {
			l.t.Fatal(err)
		}
		l.w = w
	}
	return l.w
}
func (l *lazyWriter) WriteData(ti, c, seq int, raw, comp []byte) error {
	return l.get().WriteData(ti, c, seq, raw, comp)
}
func (l *lazyWriter) EndChunk(ti, c int, s stream.ChunkSummary) error {
	return l.get().EndChunk(ti, c, s)
}
func (l *lazyWriter) Close() error { return l.get().Close() }

// load runs pgcopyin in-process and returns its error and stderr.
func load(t testing.TB, dstURL string, input []byte, cfg Config) (error, string) {
	t.Helper()
	cfg.Target = dstURL
	if cfg.Progress == "" {
		cfg.Progress = progress.None
	}
	var stderr bytes.Buffer
	err := Run(context.Background(), cfg, bytes.NewReader(input), &stderr)
	if err != nil {
		var msg bytes.Buffer
		cliutil.Report(&msg, "pgcopyin", err)
		stderr.Write(msg.Bytes())
	}
	return err, stderr.String()
}

// queryInt runs a query returning one integer.
func queryInt(t testing.TB, url, sql string) int64 { return pgtest.QueryInt(t, url, sql) }
