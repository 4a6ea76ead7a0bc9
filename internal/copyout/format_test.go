package copyout

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/stream"
)

// serverBinary is the server's own binary COPY of exactly the chunk's rows.
func serverBinary(t *testing.T, url string, tb *stream.Table, c stream.Chunk, tp *TablePlan) []byte {
	t.Helper()
	conn := connect(t, url)
	ch := Chunk{ID: c.ID, Kind: c.Kind, Lower: c.Lower, Upper: c.Upper}
	var buf bytes.Buffer
	if _, err := conn.PgConn().CopyTo(context.Background(), &buf, ch.CopySQL(tp.Table)+" (FORMAT binary)"); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRunBinary: under --format auto, tables of built-in types go as binary COPY; each chunk's
// frames, concatenated, are exactly the server's binary COPY of the chunk, every frame ends on a
// tuple boundary, and the chunk-end row counts are right.
func TestRunBinary(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, fixture(db))
	db.Exec(t, `CREATE TYPE mood AS ENUM ('sad', 'ok');
		CREATE TYPE pair AS (a int, b text);
		CREATE TABLE comp(id int PRIMARY KEY, p pair);
		CREATE TABLE moods(id int PRIMARY KEY, m mood, ms text[]);
		CREATE DOMAIN pairdom AS pair;
		CREATE TABLE viadomain(id int, p pairdom);
		CREATE TABLE moodarr(id int, ms mood[]);
		INSERT INTO comp VALUES (1, ROW(1, 'x'));
		INSERT INTO moods SELECT i, 'ok', ARRAY['a', NULL] FROM generate_series(1, 300) i;`)
	cfg := baseConfig(db.URL)
	cfg.OneOff, cfg.Format = true, FormatAuto
	var out bytes.Buffer
	if err := Run(context.Background(), cfg, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	r, err := stream.NewReader(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header()
	data := map[[2]int][]byte{}
	sums := map[[2]int]*stream.ChunkSummary{}
	scanners := map[[2]int]*binScanner{}
	for {
		f, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		k := [2]int{f.Table, f.Chunk}
		switch f.Kind {
		case stream.KindData:
			data[k] = append(data[k], f.Data...)
			if h.Tables[f.Table].Binary() {
				s := scanners[k]
				if s == nil {
					s = &binScanner{}
					scanners[k] = s
				}
				if _, _, err := s.feed(f.Data); err != nil {
					t.Fatalf("%s chunk %d frame %d: %v", f.Name, f.Chunk, f.Seq, err)
				}
				if s.state != bsCount && s.state != bsEnd || s.have != 0 {
					t.Fatalf("%s chunk %d frame %d does not end on a tuple boundary", f.Name, f.Chunk, f.Seq)
				}
			}
		case stream.KindChunkEnd:
			sums[k] = f.Summary
		}
		f.Release()
	}
	wantText := map[string]bool{"public.comp": true, "public.viadomain": true, "public.moodarr": true}
	conn := connect(t, db.URL)
	split := false
	for ti := range h.Tables {
		tb := &h.Tables[ti]
		if got := tb.Binary(); got == wantText[tb.Name] {
			t.Errorf("%s: format %q", tb.Name, tb.Format)
			continue
		}
		if !tb.Binary() {
			continue
		}
		tp := &TablePlan{Table: table(t, conn, tb.Name)}
		var rows int64
		for _, c := range tb.Chunks {
			k := [2]int{ti, c.ID}
			if c.Kind != KindAll {
				split = true
			}
			if want := serverBinary(t, db.URL, tb, c, tp); !bytes.Equal(data[k], want) {
				t.Errorf("%s chunk %d: %d bytes in the stream, the server's binary COPY has %d", tb.Name, c.ID, len(data[k]), len(want))
			}
			if !scanners[k].complete() {
				t.Errorf("%s chunk %d: no trailer", tb.Name, c.ID)
			}
			rows += sums[k].Rows
		}
		tbl, _ := ident.ParseKey(tb.Name)
		var want int64
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM ONLY "+tbl.String()).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if rows != want {
			t.Errorf("%s: chunk-end rows sum to %d, the table has %d", tb.Name, rows, want)
		}
	}
	if !split {
		t.Error("no split binary table: the test does not cover chunk cutting")
	}

	// --format binary refuses the tables that need text, naming them.
	cfg.Format = FormatBinary
	err = Run(context.Background(), cfg, io.Discard, io.Discard)
	var ee *cliutil.ExitError
	if !errors.As(err, &ee) || ee.Code != cliutil.ExitUsage || !strings.Contains(err.Error(), "public.comp, public.moodarr, public.viadomain") {
		t.Fatalf("--format binary with a composite column: %v", err)
	}
}

// TestBinScannerPieces: the scanner finds the same row boundaries however the data is cut,
// including NULLs, empty values, zero-column rows and a header extension.
func TestBinScannerPieces(t *testing.T) {
	var b []byte
	b = append(b, binarySignature...)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 3, 'x', 'y', 'z') // flags, extension of 3 bytes
	var ends []int
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		n := rng.Intn(4)
		b = append(b, 0, byte(n))
		for j := 0; j < n; j++ {
			switch l := rng.Intn(40) - 1; l {
			case -1:
				b = append(b, 0xff, 0xff, 0xff, 0xff)
			default:
				b = append(b, 0, 0, 0, byte(l))
				b = append(b, bytes.Repeat([]byte{0xff}, l)...)
			}
		}
		ends = append(ends, len(b))
	}
	b = append(b, 0xff, 0xff)
	for trial := 0; trial < 50; trial++ {
		s := &binScanner{}
		var got []int
		var rows int64
		for off := 0; off < len(b); {
			n := 1 + rng.Intn(50)
			if trial == 0 {
				n = len(b)
			}
			n = min(n, len(b)-off)
			k, end, err := s.feed(b[off : off+n])
			if err != nil {
				t.Fatal(err)
			}
			rows += k
			if end >= 0 {
				got = append(got, off+end)
			}
			off += n
		}
		if rows != int64(len(ends)) || !s.complete() {
			t.Fatalf("trial %d: %d rows, complete %v", trial, rows, s.complete())
		}
		// every reported end is a true row end, and the last one is the last row's
		for _, g := range got {
			found := false
			for _, e := range ends {
				found = found || e == g
			}
			if !found {
				t.Fatalf("trial %d: %d is not a row end", trial, g)
			}
		}
		if got[len(got)-1] != ends[len(ends)-1] {
			t.Fatalf("trial %d: last end %d, want %d", trial, got[len(got)-1], ends[len(ends)-1])
		}
	}
	if _, _, err := (&binScanner{}).feed([]byte("PGCOPY\nXXXXXXXXXXXXXXXX")); !errors.Is(err, errBinaryFraming) {
		t.Fatalf("bad signature: %v", err)
	}
}

// TestAutoCodec: --codec auto compresses nothing into a pipe and lz4 into a file or directory.
func TestAutoCodec(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		dir  string
		out  io.Writer
		want string
	}{{"", w, "none"}, {"", f, "lz4"}, {"dir", w, "lz4"}, {"", &bytes.Buffer{}, "lz4"}} {
		if got := autoCodec(tc.dir, tc.out); got != tc.want {
			t.Errorf("autoCodec(%q, %T) = %s, want %s", tc.dir, tc.out, got, tc.want)
		}
	}
}
