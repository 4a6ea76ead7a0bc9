package stream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"strings"
	"testing"
)

func testHeader(codec string, jobs int) *Header {
	return &Header{
		ServerVersion: "15.8", Position: "100:105:101,103", SnapshotMode: "shared", Codec: codec, Jobs: jobs,
		Tables: []Table{
			{Name: "public.a", Columns: []string{"id", "v"}, Chunks: []Chunk{{ID: 0, Kind: "key"}, {ID: 1, Kind: "key"}, {ID: 2, Kind: "key", Skip: true}}},
			{Name: "My Schema.b c", Columns: []string{"x"}, Chunks: []Chunk{{ID: 7, Kind: "all"}}},
		},
	}
}

// rows returns n lines of COPY text with some compressible and some random bytes.
func rows(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d\tvalue %d %x\n", i, rng.Intn(1000), rng.Int63())
	}
	return b.Bytes()
}

type sent struct {
	data map[chunkKey][]byte
	rows map[chunkKey]int64
}

// writeStream writes interleaved chunks (a0, b7, a1) split into frames of frameSize bytes.
func writeStream(t testing.TB, w FrameWriter, frameSize int) sent {
	return writeStreamN(t, w, frameSize, 500)
}

// writeStreamN writes chunks of scale, 2*scale and 0 rows.
func writeStreamN(t testing.TB, w FrameWriter, frameSize, scale int) sent {
	t.Helper()
	rng := rand.New(rand.NewSource(1))
	s := sent{data: map[chunkKey][]byte{}, rows: map[chunkKey]int64{}}
	keys := []chunkKey{{0, 0}, {1, 7}, {0, 1}}
	for i, k := range keys {
		n := scale * (i + 1)
		if k == (chunkKey{0, 1}) {
			n = 0 // an empty chunk: chunk-end only
		}
		s.data[k] = rows(rng, n)
		s.rows[k] = int64(n)
	}
	pos := map[chunkKey]int{}
	seq := map[chunkKey]int{}
	for open := len(keys); open > 0; {
		open = 0
		for _, k := range keys {
			d := s.data[k]
			if pos[k] < 0 {
				continue
			}
			open++
			if pos[k] >= len(d) {
				if err := w.EndChunk(k.table, k.chunk, ChunkSummary{Rows: s.rows[k]}); err != nil {
					t.Fatal(err)
				}
				pos[k] = -1
				continue
			}
			end := min(pos[k]+frameSize, len(d))
			if err := w.WriteData(k.table, k.chunk, seq[k], d[pos[k]:end], nil); err != nil {
				t.Fatal(err)
			}
			seq[k]++
			pos[k] = end
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return s
}

// readAll reads a stream and returns the data per chunk and the summaries.
func readAll(r *Reader) (map[chunkKey][]byte, map[chunkKey]*ChunkSummary, error) {
	got := map[chunkKey][]byte{}
	sums := map[chunkKey]*ChunkSummary{}
	for {
		f, err := r.Next()
		if err == io.EOF {
			return got, sums, nil
		}
		if err != nil {
			return got, sums, err
		}
		k := chunkKey{f.Table, f.Chunk}
		switch f.Kind {
		case KindData:
			got[k] = append(got[k], f.Data...)
		case KindChunkEnd:
			sums[k] = f.Summary
		}
		f.Release()
	}
}

func TestRoundTripCodecs(t *testing.T) {
	for _, codec := range []string{"lz4", "zstd", "zstd:19", "gzip", "gzip:1", "none"} {
		t.Run(codec, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, testHeader(codec, 3))
			if err != nil {
				t.Fatal(err)
			}
			want := writeStream(t, w, 4096)
			r, err := NewReader(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := r.Header().Codec, codec; got != want {
				t.Fatalf("codec %q, want %q", got, want)
			}
			got, sums, err := readAll(r)
			if err != nil {
				t.Fatal(err)
			}
			for k, d := range want.data {
				if !bytes.Equal(got[k], d) {
					t.Errorf("chunk %v: got %d bytes, want %d", k, len(got[k]), len(d))
				}
				if sums[k] == nil || sums[k].Rows != want.rows[k] || sums[k].Snapshot != "100:105:101,103" {
					t.Errorf("chunk %v: summary %+v, want rows %d", k, sums[k], want.rows[k])
				}
			}
			if tot := r.Totals(); tot.Chunks != 3 || tot.Rows != 1500 {
				t.Errorf("totals %+v", tot)
			}
			if codec != "none" && buf.Len() > 3*len(want.data[chunkKey{1, 7}]) {
				t.Errorf("%s: stream of %d bytes did not compress", codec, buf.Len())
			}
		})
	}
}

func TestDirRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w, err := NewDirWriter(dir, testHeader("zstd", 3))
	if err != nil {
		t.Fatal(err)
	}
	want := writeStream(t, w, 1000)
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(d.Chunks()); got != 3 {
		t.Fatalf("%d chunks, want 3", got)
	}
	for _, c := range d.Chunks() {
		cr, err := d.Open(c.Table, c.Chunk)
		if err != nil {
			t.Fatal(err)
		}
		var data []byte
		var sum *ChunkSummary
		for {
			f, err := cr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Kind == KindData {
				data = append(data, f.Data...)
			} else {
				sum = f.Summary
			}
			f.Release()
		}
		cr.Close()
		k := chunkKey{c.Table, c.Chunk}
		if !bytes.Equal(data, want.data[k]) || sum == nil || sum.Rows != want.rows[k] {
			t.Errorf("chunk %v differs", k)
		}
	}
	if _, err := NewDirWriter(dir, testHeader("zstd", 3)); err == nil {
		t.Error("NewDirWriter accepted a directory that already holds a stream")
	}
}

func goodStream(t testing.TB, codec string) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testHeader(codec, 3))
	if err != nil {
		t.Fatal(err)
	}
	writeStream(t, w, 2000)
	return buf.Bytes()
}

func readErr(b []byte) error {
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return err
	}
	_, _, err = readAll(r)
	return err
}

func TestCorruptEveryByte(t *testing.T) {
	// Flipping any single byte past the header must be detected, never accepted.
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testHeader("lz4", 3))
	if err != nil {
		t.Fatal(err)
	}
	writeStreamN(t, w, 300, 12)
	b := buf.Bytes()
	for i := 0; i < len(b); i++ {
		c := bytes.Clone(b)
		c[i] ^= 0x20
		err := readErr(c)
		if err == nil {
			t.Fatalf("byte %d flipped: stream accepted", i)
		}
	}
}

func TestCorruptNamesChunk(t *testing.T) {
	b := goodStream(t, "lz4")
	// Find the first data frame of table 1 chunk 7 and damage its payload.
	r, _ := NewReader(bytes.NewReader(b))
	off := r.Offset()
	for {
		f, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if f.Table == 1 && f.Chunk == 7 {
			break
		}
		off = r.Offset()
	}
	c := bytes.Clone(b)
	c[off+frameHdrLen+5] ^= 1
	err := readErr(c)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	var se *Error
	if !errors.As(err, &se) || se.Table != "My Schema.b c" || se.Chunk != 7 {
		t.Fatalf("error %v does not name table My Schema.b c chunk 7", err)
	}
	if !strings.Contains(err.Error(), "table My Schema.b c chunk 7") {
		t.Errorf("message %q", err)
	}
}

func TestTruncated(t *testing.T) {
	b := goodStream(t, "zstd")
	for _, n := range []int{0, 5, 12, 40, len(b) / 2, len(b) - 40, len(b) - 1} {
		err := readErr(b[:n])
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("cut at %d of %d: got %v, want ErrTruncated", n, len(b), err)
		}
	}
	err := readErr(b[:len(b)/2])
	var se *Error
	if !errors.As(err, &se) || se.Table == "" || se.Chunk < 0 {
		t.Errorf("cut in the middle: %v does not name a table and chunk", err)
	}
	if err := readErr(append(bytes.Clone(b), 0)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("trailing byte: got %v", err)
	}
}

func TestMagicAndVersion(t *testing.T) {
	b := goodStream(t, "none")
	c := bytes.Clone(b)
	copy(c, "COPY 1\n")
	if err := readErr(c); !errors.Is(err, ErrBadMagic) {
		t.Errorf("bad magic: got %v", err)
	}
	c = bytes.Clone(b)
	c[7] = 2
	if err := readErr(c); !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("wrong version: got %v", err)
	}
	h := testHeader("lz4", 1)
	h.Version = 9
	if _, err := NewWriter(io.Discard, h); !errors.Is(err, ErrVersion) {
		t.Errorf("writer accepted header version 9: %v", err)
	}
}

func TestWriterRules(t *testing.T) {
	data := []byte("1\tx\n")
	cases := []struct {
		name string
		fn   func(w *Writer) error
		want string
	}{
		{"unknown chunk", func(w *Writer) error { return w.WriteData(0, 9, 0, data, nil) }, "not in the header's plan"},
		{"skipped chunk", func(w *Writer) error { return w.WriteData(0, 2, 0, data, nil) }, "marked skip"},
		{"bad table", func(w *Writer) error { return w.WriteData(5, 0, 0, data, nil) }, "out of range"},
		{"sequence gap", func(w *Writer) error { return w.WriteData(0, 0, 1, data, nil) }, "sequence 1, expected 0"},
		{"too many open", func(w *Writer) error {
			w.WriteData(0, 0, 0, data, nil)
			return w.WriteData(0, 1, 0, data, nil)
		}, "more than jobs=1"},
		{"after end", func(w *Writer) error {
			w.EndChunk(0, 0, ChunkSummary{Rows: 0})
			return w.WriteData(0, 0, 0, data, nil)
		}, "after its end"},
		{"missing chunk at close", func(w *Writer) error { return w.Close() }, "planned chunks never sent: public.a chunk 0"},
		{"open at close", func(w *Writer) error {
			w.WriteData(0, 0, 0, data, nil)
			return w.Close()
		}, "still open"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, err := NewWriter(io.Discard, testHeader("lz4", 1))
			if err != nil {
				t.Fatal(err)
			}
			err = c.fn(w)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestParseCodec(t *testing.T) {
	for in, want := range map[string]string{"lz4": "lz4", "": "lz4", "ZSTD": "zstd", "zstd:3": "zstd:3", "gzip:9": "gzip:9", "none": "none"} {
		c, err := ParseCodec(in)
		if err != nil || c.String() != want {
			t.Errorf("ParseCodec(%q) = %v, %v; want %s", in, c, err, want)
		}
	}
	for _, in := range []string{"brotli", "zstd:0", "zstd:23", "gzip:10", "lz4:2", "zstd:x"} {
		if _, err := ParseCodec(in); err == nil {
			t.Errorf("ParseCodec(%q) accepted", in)
		}
	}
}

func TestDirCorruptNamesChunk(t *testing.T) {
	dir := t.TempDir()
	w, err := NewDirWriter(dir, testHeader("lz4", 3))
	if err != nil {
		t.Fatal(err)
	}
	writeStreamN(t, w, 300, 20)
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := dir + "/" + ChunkFile(1, 7)
	good, _ := os.ReadFile(path)
	// Every byte of the chunk file, header bytes included, is checked and the chunk named.
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		os.WriteFile(path, b, 0o644)
		err := readChunkFile(d, 1, 7)
		var se *Error
		if err == nil || !errors.As(err, &se) || se.Table != "My Schema.b c" || se.Chunk != 7 {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	os.WriteFile(path, good[:len(good)-3], 0o644)
	if err := readChunkFile(d, 1, 7); !errors.Is(err, ErrTruncated) {
		t.Errorf("cut chunk file: %v", err)
	}
	os.Remove(dir + "/end.json")
	if _, err := OpenDir(dir); !errors.Is(err, ErrTruncated) {
		t.Errorf("directory without end.json: %v", err)
	}
}

func readChunkFile(d *Dir, ti, c int) error {
	cr, err := d.Open(ti, c)
	if err != nil {
		return err
	}
	defer cr.Close()
	for {
		f, err := cr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		f.Release()
	}
}

func TestDeferDecode(t *testing.T) {
	for _, codec := range []string{"lz4", "zstd", "gzip", "none"} {
		b := goodStream(t, codec)
		want, _, err := readAll(mustReader(t, b))
		if err != nil {
			t.Fatal(err)
		}
		r := mustReader(t, b)
		r.DeferDecode()
		got := map[chunkKey][]byte{}
		for {
			f, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error)
			go func() { done <- f.Decode() }() // decoding happens off the reading goroutine
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			k := chunkKey{f.Table, f.Chunk}
			got[k] = append(got[k], f.Data...)
			f.Release()
		}
		for k := range want {
			if !bytes.Equal(got[k], want[k]) {
				t.Errorf("%s: chunk %v differs when decoded later", codec, k)
			}
		}
	}
	// A damaged payload passes Next and fails Decode, naming the chunk.
	b := goodStream(t, "lz4")
	r := mustReader(t, b)
	off := r.Offset()
	f, _ := r.Next()
	c := bytes.Clone(b)
	c[off+frameHdrLen+3] ^= 0x10
	r = mustReader(t, c)
	r.DeferDecode()
	f, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	err = f.Decode()
	var se *Error
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &se) || se.Table != "public.a" || se.Chunk != 0 || se.Offset != off {
		t.Fatalf("Decode of a damaged frame: %v", err)
	}
	f.Release()
}

func mustReader(t *testing.T, b []byte) *Reader {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return r
}
