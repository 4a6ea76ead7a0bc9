package deltarec

import (
	"bytes"
	"strings"
	"testing"
)

// TestPartitionRecords: detach_partition and drop_partition round-trip through Writer and Reader
// (both decoders), and a record with a wrong set of fields is refused with what it needs.
func TestPartitionRecords(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Begin("1:1:", "2:2:", "")
	w.RemovePartition("App Data.ev", "App Data.ev \"0\"", false)
	w.RemovePartition("public.ev", "public.ev_1", true)
	w.Commit("2:2:", 0)
	w.Flush()
	want := `{"op":"begin","from":"1:1:","to":"2:2:"}
{"op":"detach_partition","table":"App Data.ev","partition":"App Data.ev \"0\""}
{"op":"drop_partition","table":"public.ev","partition":"public.ev_1"}
{"op":"commit","to":"2:2:","rows":0}
`
	if buf.String() != want {
		t.Fatalf("wrote\n%s\nwant\n%s", buf.String(), want)
	}
	recs, err := readAll(t, buf.String())
	if err != nil {
		t.Fatal(err)
	}
	if r := recs[1]; r.Op != OpDetachPartition || r.Table != "App Data.ev" || r.Partition != `App Data.ev "0"` {
		t.Errorf("record 2 read back as %+v", r)
	}
	rd := NewReader(strings.NewReader(buf.String()))
	var got []string
	for i := 0; i < 4; i++ {
		r, err := rd.Scan()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Op+"|"+r.Table+"|"+r.Partition)
	}
	if g := strings.Join(got, ";"); g != `begin||;detach_partition|App Data.ev|App Data.ev "0";drop_partition|public.ev|public.ev_1;commit||` {
		t.Errorf("Scan read %s", g)
	}
	for in, msg := range map[string]string{
		`{"op":"drop_partition","table":"a.b"}`:                                   `drop_partition needs "table" and "partition" only`,
		`{"op":"detach_partition","partition":"a.b_0"}`:                           `detach_partition needs "table" and "partition" only`,
		`{"op":"detach_partition","table":"a.b","partition":"a.b_0","to":"1:1:"}`: `detach_partition needs "table" and "partition" only`,
		`{"op":"upsert","table":"a.b","row":{"x":"1"},"partition":"a.b_0"}`:       `only detach_partition and drop_partition take "partition"`,
	} {
		if _, err := readAll(t, in+"\n"); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: got %v, want %q", in, err, msg)
		}
		rec, err := jsonDecode([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(rec); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Validate(%s): got %v, want %q", in, err, msg)
		}
	}
}
