package stream

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/dbconn"
)

// writeChunk writes one whole chunk of rows lines of COPY text.
func writeChunk(t *testing.T, w *DirWriter, ti, id, rows int) {
	t.Helper()
	data := []byte(strings.Repeat("1\tx\n", rows))
	if err := w.WriteData(ti, id, 0, data, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.EndChunk(ti, id, ChunkSummary{Rows: int64(rows), Bytes: int64(len(data)), Frames: 1, Snapshot: "100:105:101,103"}); err != nil {
		t.Fatal(err)
	}
}

// TestDirResume: a dump interrupted after one chunk file (another chunk half-written) is resumed
// by a run of the same plan that skips that chunk; the finished directory holds every chunk.
func TestDirResume(t *testing.T) {
	dir := t.TempDir()
	w, err := NewDirWriter(dir, testHeader("lz4", 2))
	if err != nil {
		t.Fatal(err)
	}
	writeChunk(t, w, 0, 1, 5)
	if err := w.WriteData(1, 7, 0, []byte("half\n"), nil); err != nil { // in flight at the kill
		t.Fatal(err)
	}
	u, err := ReadUnfinishedDir(dir)
	if err != nil || u == nil || !u.Done["public.a"][1] || u.Files != 1 || len(u.Done) != 1 {
		t.Fatalf("unfinished dir = %+v, %v", u, err)
	}

	h := testHeader("lz4", 2)
	h.Tables[0].Chunks[1].Skip = true // written by the first run
	w2, err := NewDirWriter(dir, h)
	if err != nil {
		t.Fatal(err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmps) != 0 {
		t.Fatalf("half-written files left: %v", tmps)
	}
	writeChunk(t, w2, 0, 0, 3)
	writeChunk(t, w2, 1, 7, 4)
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	var rows int64
	for _, c := range d.Chunks() {
		got = append(got, c.Chunk)
		cr, err := d.Open(c.Table, c.Chunk)
		if err != nil {
			t.Fatal(err)
		}
		for {
			f, err := cr.Next()
			if err != nil {
				break
			}
			if f.Kind == KindChunkEnd {
				rows += f.Summary.Rows
			}
			f.Release()
		}
		cr.Close()
	}
	if len(got) != 3 || rows != 12 {
		t.Fatalf("finished dir holds chunks %v with %d rows, want 3 chunks and 12 rows", got, rows)
	}
	if _, err := NewDirWriter(dir, testHeader("lz4", 2)); err == nil || !strings.Contains(err.Error(), "already holds a finished dump") {
		t.Fatalf("a finished dump was not refused: %v", err)
	}
}

// TestDirResumeRefusesAnotherDump: a run that does not continue the dump is refused, with what
// differs, and the directory is left as it was.
func TestDirResumeRefusesAnotherDump(t *testing.T) {
	for name, change := range map[string]func(h *Header){
		"codec":         func(h *Header) { h.Codec = "zstd" },
		"tables":        func(h *Header) { h.Tables = h.Tables[:1] },
		"columns":       func(h *Header) { h.Tables[1].Columns = []string{"y"} },
		"plan":          func(h *Header) { s := "5"; h.Tables[0].Chunks[0].Upper = &s },
		"skip":          func(h *Header) { h.Tables[0].Chunks[1].Skip = false }, // would write chunk 1 twice
		"other source":  func(h *Header) { h.Source.DatabaseOID = 2 },
		"other cluster": func(h *Header) { h.Source.SystemID = "999" },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			first := testHeader("lz4", 2)
			first.Source = &dbconn.Identity{SystemID: "123", DatabaseOID: 1, Database: "app"}
			w, err := NewDirWriter(dir, first)
			if err != nil {
				t.Fatal(err)
			}
			writeChunk(t, w, 0, 1, 5)
			before, _ := os.ReadFile(filepath.Join(dir, dirHeader))
			h := testHeader("lz4", 2)
			h.Source = &dbconn.Identity{SystemID: "123", DatabaseOID: 1, Database: "app"}
			h.Tables[0].Chunks[1].Skip = true
			change(h)
			_, err = NewDirWriter(dir, h)
			if !errors.Is(err, ErrOtherDump) || !strings.Contains(err.Error(), "empty directory") {
				t.Fatalf("err = %v, want a refusal naming another dump", err)
			}
			if after, _ := os.ReadFile(filepath.Join(dir, dirHeader)); string(after) != string(before) {
				t.Fatal("the refused run changed header.json")
			}
		})
	}
}
