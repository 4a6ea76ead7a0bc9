package stream

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"testing"
)

// benchData is 1 MiB of COPY-like text.
func benchData() []byte {
	rng := rand.New(rand.NewSource(2))
	var b bytes.Buffer
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, "%d\t2026-11-%02d 10:00:00+00\tcustomer %d\t%d.%02d\t{a,b}\n", i, rng.Intn(28)+1, rng.Intn(100000), rng.Intn(1000), rng.Intn(100))
	}
	return b.Bytes()[:1<<20]
}

func benchHeader(codec string) *Header {
	return &Header{Position: "1:2:", SnapshotMode: "shared", Codec: codec, Jobs: 1,
		Tables: []Table{{Name: "s.t", Columns: []string{"c"}, Chunks: []Chunk{{ID: 0, Kind: "all"}}}}}
}

// BenchmarkEncode measures compress + frame throughput of one goroutine (MB/s of COPY text).
func BenchmarkEncode(b *testing.B) {
	data := benchData()
	for _, codec := range []string{"none", "lz4", "zstd", "gzip"} {
		b.Run(codec, func(b *testing.B) {
			w, err := NewWriter(io.Discard, benchHeader(codec))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				if err := w.WriteData(0, 0, i, data, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode measures read + decompress + verify throughput (MB/s of COPY text).
func BenchmarkDecode(b *testing.B) {
	data := benchData()
	for _, codec := range []string{"none", "lz4", "zstd", "gzip"} {
		b.Run(codec, func(b *testing.B) {
			const frames = 16
			var buf bytes.Buffer
			w, _ := NewWriter(&buf, benchHeader(codec))
			for i := 0; i < frames; i++ {
				w.WriteData(0, 0, i, data, nil)
			}
			w.EndChunk(0, 0, ChunkSummary{})
			w.Close()
			stream := buf.Bytes()
			b.SetBytes(int64(len(data)) * frames)
			b.ReportMetric(float64(len(data)*frames)/float64(len(stream)), "ratio")
			for i := 0; i < b.N; i++ {
				r, err := NewReader(bytes.NewReader(stream))
				if err != nil {
					b.Fatal(err)
				}
				for {
					f, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					f.Release()
				}
			}
		})
	}
}
