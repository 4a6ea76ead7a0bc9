package stream

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the reader: it must return an error or a valid stream, never
// panic or allocate without bound.
func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, testHeader("lz4", 3))
	writeStreamN(f, w, 200, 5)
	f.Add(buf.Bytes())
	f.Add([]byte("PGFCOPY\x01"))
	f.Add(buf.Bytes()[:60])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		for i := 0; i < 10000; i++ {
			fr, err := r.Next()
			if err != nil {
				return
			}
			fr.Release()
		}
	})
}

// FuzzRoundTrip checks decode(encode(x)) == x for arbitrary payloads, frame sizes and codecs.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("1\thello\n2\tworld\n"), uint16(7), uint8(1))
	f.Add(bytes.Repeat([]byte{0}, 5000), uint16(1000), uint8(2))
	f.Add([]byte{0xff, 0, 1, 2}, uint16(1), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, frame uint16, codec uint8) {
		if len(data) == 0 {
			return
		}
		fs := int(frame)%4096 + 1
		c := Codec{Kind: CodecKind(codec % 4)}
		h := &Header{Position: "1:2:", SnapshotMode: "shared", Codec: c.String(), Jobs: 2,
			Tables: []Table{{Name: "s.t", Columns: []string{"c"}, Chunks: []Chunk{{ID: 3, Kind: "all"}, {ID: 4, Kind: "all"}}}}}
		var buf bytes.Buffer
		w, err := NewWriter(&buf, h)
		if err != nil {
			t.Fatal(err)
		}
		// Both chunks carry data, interleaved frame by frame.
		for chunk, seq := 3, 0; ; seq++ {
			lo := seq * fs
			if lo >= len(data) {
				break
			}
			for _, ch := range []int{3, 4} {
				chunk = ch
				if err := w.WriteData(0, chunk, seq, data[lo:min(lo+fs, len(data))], nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, ch := range []int{3, 4} {
			if err := w.EndChunk(0, ch, ChunkSummary{Rows: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int][]byte{}
		for {
			fr, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got[fr.Chunk] = append(got[fr.Chunk], fr.Data...)
			fr.Release()
		}
		if !bytes.Equal(got[3], data) || !bytes.Equal(got[4], data) {
			t.Fatalf("round trip differs: %d/%d bytes, want %d", len(got[3]), len(got[4]), len(data))
		}
	})
}

// FuzzFrames drives the reader past the checksums: the input describes frames (kind, codec,
// table, chunk, seq, raw length, payload) that are written with valid header checksums and, where
// the payload decodes, a valid data checksum, so decoders, JSON parsing and the ordering rules see
// arbitrary input. The reader must never panic and must accept only streams obeying the rules.
func FuzzFrames(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 4, 0, 4, 0, '1', '\n', '2', '\n', 2, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Add([]byte{1, 1, 0, 1, 0, 10, 0, 5, 0, 0x50, 'a', 'b', 'c', 'd', 'e', 3, 0, 0, 0, 0, 0, 0, 2, 0, '{', '}'})
	f.Fuzz(func(t *testing.T, in []byte) {
		h := &Header{Version: Version, Position: "1:2:", SnapshotMode: "shared", Codec: "lz4", Jobs: 2,
			Tables: []Table{{Name: "s.t", Columns: []string{"c"}, Chunks: []Chunk{{ID: 0, Kind: "all"}, {ID: 1, Kind: "key"}, {ID: 2, Kind: "key", Skip: true}}}}}
		js, _ := json.Marshal(h)
		var buf bytes.Buffer
		buf.Write(magic(Version))
		binary.Write(&buf, binary.LittleEndian, uint32(len(js)))
		binary.Write(&buf, binary.LittleEndian, checksum(js))
		buf.Write(js)
		for len(in) >= 9 {
			fh := frameHeader{Kind: FrameKind(in[0]%4 + 0), Codec: CodecKind(in[1] % 4), Table: uint32(in[2] % 2), Chunk: uint32(in[3] % 4), Seq: uint32(in[4])}
			rawLen := int(binary.LittleEndian.Uint16(in[5:]))
			n := int(binary.LittleEndian.Uint16(in[7:]))
			in = in[9:]
			n = min(n, len(in))
			payload := in[:n]
			in = in[n:]
			if fh.Kind != KindData {
				fh.Codec = CodecNone
				rawLen = n
			}
			fh.RawLen, fh.Len = uint32(rawLen), uint32(n)
			if raw, err := decompress(fh.Codec, make([]byte, rawLen), payload, rawLen); err == nil {
				fh.CRC = checksum(raw)
			}
			var hb [frameHdrLen]byte
			fh.put(hb[:])
			buf.Write(hb[:])
			buf.Write(payload)
		}
		r, err := NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		for {
			fr, err := r.Next()
			if err == io.EOF {
				// Accepted: both planned chunks must have ended.
				if tot := r.Totals(); tot.Chunks != 2 {
					t.Fatalf("stream accepted with %d chunks ended, want 2", tot.Chunks)
				}
				return
			}
			if err != nil {
				return
			}
			fr.Release()
		}
	})
}
