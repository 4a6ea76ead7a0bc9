package progress

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// TestLoadingMovesBeforeCommit: a loader's meter shows received rows (committed and loading) from
// the first frame, the percentage counts them, and the final summary counts committed rows only.
func TestLoadingMovesBeforeCommit(t *testing.T) {
	var buf syncBuf
	r := New(&buf, Plain, "pgcopyin")
	clock := time.Unix(1000, 0)
	r.now = func() time.Time { return clock }
	r.SetInterval(time.Hour)
	r.AddTable("s.t", 100, 0)
	r.Start()
	r.Begin("s.t")
	r.Loading("s.t", 40, 4000) // one chunk's frames arrived, nothing committed yet
	clock = clock.Add(time.Second)
	r.report(false)
	s := r.Status()
	if s.Rows != 0 || s.LoadingRows != 40 || s.LoadingBytes != 4000 || s.RowsPerSec != 40 || s.ETA == nil || *s.ETA != 1.5 {
		t.Fatalf("before commit: %+v", s)
	}
	if len(s.Active) != 1 || s.Active[0].LoadingRows != 40 {
		t.Fatalf("active before commit: %+v", s.Active)
	}
	r.Settle("s.t", 40, 4000, 40, 4000)
	r.End("s.t")
	r.Begin("s.t")
	r.Loading("s.t", 25, 2500) // the next chunk fails halfway
	r.report(false)
	r.Loading("s.t", -25, -2500)
	r.End("s.t")
	r.Finish(nil)
	out := buf.String()
	for _, want := range []string{
		"0/1 tables, 40 rows received of ~100 (0 committed, 40 loading), 3.9 KiB, ",
		"[s.t 40%]",
		"0/1 tables, 65 rows received of ~100 (40 committed, 25 loading), 6.3 KiB, ",
		"[s.t 65%]",
		"0/1 tables, 40 rows, 3.9 KiB, ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if last := out[strings.LastIndex(strings.TrimSuffix(out, "\n"), "\n")+1:]; strings.Contains(last, "loading") || !strings.Contains(last, "done in") {
		t.Errorf("final summary is not about committed rows: %q", last)
	}
}

// TestRowCounterText: rows end at a newline (COPY text escapes newlines inside values).
func TestRowCounterText(t *testing.T) {
	c := NewRowCounter(false)
	data := []byte("1\ta\\nb\n2\t\\N\n3\tc\n")
	var got int64
	for _, b := range data {
		got += c.Count([]byte{b})
	}
	if got != 3 || c.Total() != 3 {
		t.Fatalf("counted %d (total %d), want 3", got, c.Total())
	}
}

// TestRowCounterBinary: tuples of binary COPY data are counted however the frames split them.
func TestRowCounterBinary(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("PGCOPY\n\xff\r\n\x00")
	binary.Write(&b, binary.BigEndian, int32(0)) // flags
	binary.Write(&b, binary.BigEndian, int32(3)) // header extension of 3 bytes
	b.WriteString("ext")
	tuple := func(fields ...[]byte) {
		binary.Write(&b, binary.BigEndian, int16(len(fields)))
		for _, f := range fields {
			if f == nil {
				binary.Write(&b, binary.BigEndian, int32(-1))
				continue
			}
			binary.Write(&b, binary.BigEndian, int32(len(f)))
			b.Write(f)
		}
	}
	tuple([]byte{0, 0, 0, 1}, []byte("hello"))
	tuple([]byte{0, 0, 0, 2}, nil)
	tuple([]byte{0, 0, 0, 3}, []byte{})
	tuple(bytes.Repeat([]byte{'x'}, 70000))
	binary.Write(&b, binary.BigEndian, int16(-1)) // trailer
	data := b.Bytes()
	for _, size := range []int{1, 2, 3, 7, 64, len(data)} {
		c := NewRowCounter(true)
		for p := data; len(p) > 0; {
			n := min(size, len(p))
			c.Count(p[:n])
			p = p[n:]
		}
		if c.Total() != 4 {
			t.Errorf("frames of %d bytes: counted %d rows, want 4", size, c.Total())
		}
	}
}
