package deltarec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// jsonDecode is the reference: encoding/json into a Record, strict about unknown fields.
func jsonDecode(line []byte) (*Record, error) {
	rec := new(Record)
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(rec); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one value")
	}
	return rec, nil
}

func readAll(t *testing.T, in string) ([]*Record, error) {
	t.Helper()
	rd := NewReader(strings.NewReader(in))
	var out []*Record
	for {
		r, err := rd.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
}

func TestWriterReaderRoundTrip(t *testing.T) {
	vals := [][]byte{[]byte("42"), nil, []byte("tab\there\nnew \\ line \"q\" \r \x01 \x7f"), []byte("héllo ☃ 𝄞"), []byte(""), []byte("\xff bad utf8")}
	cols := []string{"id", "nul", "esc", "uni", "empty", "Odd \"Col\""}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Begin("1:2:", "3:3:", "2026-01-01T00:00:00Z")
	w.Upsert("App Data.Users", cols, vals)
	w.Upsert("App Data.Users", cols, vals)
	w.Delete("public.t", []string{"k"}, [][]byte{[]byte("k1")})
	w.Truncate("public.t")
	w.Rows("public.log", []string{"a", "b"}, [][]byte{nil, []byte("x")}, 0)
	w.FlushPoint()
	w.Commit("3:3:", 3)
	w.Flush()
	rd := NewReader(bytes.NewReader(buf.Bytes()))
	var got []string
	for {
		r, err := rd.Scan()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		s := r.Op + "|" + r.From + "|" + r.To + "|" + r.At + "|" + r.Table
		for i, c := range r.Cols {
			if r.Vals[i] == nil {
				s += "|" + c + "=NULL"
			} else {
				s += "|" + c + "=" + string(r.Vals[i])
			}
		}
		if r.HasRows {
			s += "|rows"
		}
		if r.HasCount {
			s += fmt.Sprintf("|count=%d", r.Count)
		}
		got = append(got, s)
	}
	row := "|id=42|nul=NULL|esc=tab\there\nnew \\ line \"q\" \r \x01 \x7f|uni=héllo ☃ 𝄞|empty=|Odd \"Col\"=\ufffd bad utf8"
	want := []string{
		"begin|1:2:|3:3:|2026-01-01T00:00:00Z|",
		"upsert||||App Data.Users" + row,
		"upsert||||App Data.Users" + row,
		"delete||||public.t|k=k1",
		"truncate||||public.t",
		"rows||||public.log|a=NULL|b=x|count=0",
		"flush||||",
		"commit||3:3:|||rows",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}

// TestDecodeMatchesEncodingJSON checks the hand-written decoder against encoding/json on valid and
// invalid lines: same records where both accept, and every line encoding/json rejects is rejected.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, line := range decodeCases {
		checkAgainstJSON(t, []byte(line))
	}
}

var decodeCases = []string{
	`{"op":"begin","from":"1:2:","to":"3:3:"}`,
	`{"op":"begin","from":"1:2:","to":"3:3:","source":"database=a&database_oid=5"}`,
	`{"op":"commit","to":"3:3:","source":"database=a&database_oid=5"}`,
	` { "op" : "upsert" , "table" : "a.b" , "row" : { "x" : "1" , "y" : null } } `,
	`{"op":"upsert","table":"a.b","row":{"x":"\u00e9\ud834\udd1e\ud834 \\\/\b\f\n\r\t\"","y":"\ud800\u0041"}}`,
	`{"op":"upsert","table":"a.b","row":{"x":"raw é ☃"}}`,
	"{\"op\":\"upsert\",\"table\":\"a.b\",\"row\":{\"x\":\"bad \xff\xfe utf8\"}}",
	`{"op":"commit","to":"3:3:","rows":12}`,
	`{"op":"commit","to":"3:3:","rows":-1}`,
	`{"op":"commit","to":"3:3:","rows":1.5}`,
	`{"op":"commit","to":"3:3:","rows":"1"}`,
	`{"op":"commit","to":"3:3:","rows":1e3}`,
	`{"op":"commit","to":"3:3:","rows":99999999999999999999}`,
	`{"op":"delete","table":"a.b","key":{"k":"1"}}`,
	`{"op":"delete","table":"a.b","key":null}`,
	`{"op":"truncate","table":"a.b"}`,
	`{"op":"rows","table":"a.b","row":{"x":"1","y":null},"count":2}`,
	`{"op":"rows","table":"a.b","row":{"x":"1"},"count":0}`,
	`{"op":"rows","table":"a.b","row":{"x":"1"},"count":-1}`,
	`{"op":"rows","table":"a.b","row":{"x":"1"}}`,
	`{"op":"upsert","table":"a.b","row":{"x":"1"},"count":1}`,
	`{"op":"flush"}`,
	`{"op":"detach_partition","table":"a.b","partition":"a.b_0"}`,
	`{"op":"drop_partition","table":"a.b","partition":"a.b_0"}`,
	`{"op":"drop_partition","table":"a.b"}`,
	`{"op":"detach_partition","table":"a.b","partition":"a.b_0","row":{"x":"1"}}`,
	`{"op":"truncate","table":"a.b","partition":"a.b_0"}`,
	`{}`,
	`{"op":null}`,
	`{"op":"begin","from":null,"to":"1:1:"}`,
	`{"op":"begin","extra":1}`,
	`{"op":"upsert","table":"a.b","row":{"x":1}}`,
	`{"op":"upsert","table":"a.b","row":{"x":true}}`,
	`{"op":"upsert","table":"a.b","row":["x"]}`,
	`{"op":"upsert","table":"a.b","row":{"x":"1"}} {}`,
	`{"op":"upsert","table":"a.b","row":{"x":"1"}`,
	`{"op":"upsert","table":"a.b","row":{"x":"1}}`,
	`{"op":"upsert","table":"a.b","row":{"x":"a` + "\x01" + `b"}}`,
	`{"op":"upsert","table":"a.b","row":{"x":"\q"}}`,
	`{"op":"upsert","table":"a.b","row":{"x":"\u12"}}`,
	`{"op":"upsert" "table":"a.b"}`,
	`{"op":"upsert",}`,
	`[1]`,
	`"x"`,
	`nul`,
	`{"op":nul}`,
	`{"op":"upsert","table":"a.b","row":{"x":"1",}}`,
}

func checkAgainstJSON(t *testing.T, line []byte) {
	t.Helper()
	want, werr := jsonDecode(line)
	var raw Raw
	gerr := decode(line, &raw)
	if werr != nil {
		if gerr == nil {
			t.Errorf("%q: encoding/json rejects it (%v) but decode accepts it", line, werr)
		}
		return
	}
	if gerr != nil {
		// Stricter on purpose: duplicate fields and columns (encoding/json keeps the last).
		if strings.Contains(gerr.Error(), "twice") {
			return
		}
		t.Errorf("%q: decode rejects it (%v) but encoding/json accepts it", line, gerr)
		return
	}
	if hasDupCols(raw.Cols) {
		return // apply rejects duplicate columns
	}
	got := raw.Record()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q:\n got %+v\nwant %+v", line, got, want)
	}
}

func hasDupCols(c []string) bool {
	seen := map[string]bool{}
	for _, s := range c {
		if seen[s] {
			return true
		}
		seen[s] = true
	}
	return false
}

func FuzzDecode(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		line = bytes.TrimSpace(line)
		if bytes.IndexByte(line, '\n') >= 0 {
			return
		}
		// encoding/json matches field names case-insensitively; the format's names are lower-case.
		if rec, err := jsonDecode(line); err == nil && !exactFieldNames(line, rec) {
			return
		}
		checkAgainstJSON(t, line)
	})
}

// exactFieldNames reports whether every top-level field name appears in lower case as written.
func exactFieldNames(line []byte, _ *Record) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(line, &m) != nil {
		return false
	}
	for k := range m {
		switch k {
		case "op", "from", "to", "at", "table", "row", "key", "rows", "count":
		default:
			return false
		}
	}
	return true
}

func TestReaderErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"{\"op\":\"begin\",\"to\":\"1:1:\"}\n{\"op\":\"upsert\",\"table\":\"a.b\",\"row\":{\"x\":1}}\n", "line 2: malformed record"},
		{"{\"op\":\"bogus\"}\n", `line 1: unknown op "bogus"`},
		{"\n\n{\"op\":\"delete\",\"table\":\"a.b\",\"key\":{\"k\":null}}\n", `line 3 (table a.b): delete key column "k" is null`},
		{"{\"op\":\"upsert\",\"table\":\"a.b\",\"row\":{}}\n", `upsert needs "table" and a non-empty "row"`},
		{"{\"op\":\"truncate\",\"table\":\"a.b\",\"row\":{\"x\":\"1\"}}\n", `truncate needs "table" only`},
		{"{\"op\":\"flush\",\"to\":\"1:1:\"}\n", `flush takes no fields`},
		{"{\"op\":\"begin\",\"to\":\"1:1:\"}", "truncated input"},
		{"{\"op\":\"begin\",\"to\":\"1:1:\",\"to\":\"2:2:\"}\n", `field "to" given twice`},
	}
	for _, c := range cases {
		_, err := readAll(t, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error containing %q", c.in, err, c.want)
		}
	}
}

// benchLines is a batch of 5-column upserts like the bench table's.
func benchLines(n int) []byte {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	cols := []string{"id", "a", "b", "c", "d"}
	w.Begin("1:1:", "2:2:", "")
	for i := 0; i < n; i++ {
		w.Upsert("public.bench", cols, [][]byte{[]byte("123456"), []byte("456"), []byte("c4ca4238a0b923820dcc509a6f75849b"), []byte("2026-11-26 01:03:56.568843+00"), []byte("0.33333333333333333333")})
	}
	w.Commit("2:2:", int64(n))
	w.Flush()
	return buf.Bytes()
}

func BenchmarkScan(b *testing.B) {
	in := benchLines(10000)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		rd := NewReader(bytes.NewReader(in))
		for {
			if _, err := rd.Scan(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkNextEncodingJSON is the decoder pgdelta apply used before Scan, for comparison.
func BenchmarkNextEncodingJSON(b *testing.B) {
	in := benchLines(10000)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		for _, line := range bytes.Split(bytes.TrimSpace(in), []byte("\n")) {
			if _, err := jsonDecode(line); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkWriteUpsert(b *testing.B) {
	w := NewWriter(io.Discard)
	cols := []string{"id", "a", "b", "c", "d"}
	vals := [][]byte{[]byte("123456"), []byte("456"), []byte("c4ca4238a0b923820dcc509a6f75849b"), []byte("2026-11-26 01:03:56.568843+00"), []byte("0.33333333333333333333")}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Upsert("public.bench", cols, vals); err != nil {
			b.Fatal(err)
		}
	}
}

// TestScanForgetsPreviousLine checks that nothing of one line leaks into the next (values and
// names are reused between Scans).
func TestScanForgetsPreviousLine(t *testing.T) {
	in := "{\"op\":\"begin\",\"to\":\"1:1:\"}\n{\"op\":\"upsert\",\"table\":\"a.b\",\"row\":{\"x\":\"1\"}}\n{\"table\":\"a.b\",\"row\":{\"x\":\"1\"}}\n"
	_, err := readAll(t, in)
	if err == nil || !strings.Contains(err.Error(), `line 3 (table a.b): missing "op"`) {
		t.Fatalf("got %v, want line 3: missing op", err)
	}
	in = "{\"op\":\"upsert\",\"table\":\"a.b\",\"row\":{\"x\":\"1\",\"y\":\"\\u0041\"}}\n{\"op\":\"upsert\",\"table\":\"a.c\",\"row\":{\"x\":\"2\"}}\n"
	recs, err := readAll(t, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := *recs[0].Row["y"]; got != "A" {
		t.Fatalf("y = %q", got)
	}
	if len(recs[1].Row) != 1 || *recs[1].Row["x"] != "2" || recs[1].Table != "a.c" {
		t.Fatalf("second record %+v", recs[1])
	}
}
