package catchup

import (
	"testing"
)

func TestSnapshotParseVisibleCovers(t *testing.T) {
	s, err := ParseSnapshot("1000:1012:1007,1003")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "1000:1012:1003,1007"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	for _, c := range []struct {
		x    uint64
		want bool
	}{{999, true}, {1000, true}, {1003, false}, {1004, true}, {1007, false}, {1011, true}, {1012, false}} {
		if got := s.Visible(c.x); got != c.want {
			t.Errorf("Visible(%d) = %v", c.x, got)
		}
	}
	for _, bad := range []string{"", "1:2", "5:3:", "1:5:7", "a:b:", "1:5:x"} {
		if _, err := ParseSnapshot(bad); err == nil {
			t.Errorf("ParseSnapshot(%q) accepted", bad)
		}
	}
	must := func(s string) Snapshot {
		p, err := ParseSnapshot(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		s, p string
		want bool
	}{
		{"1000:1012:1003", "1000:1012:1003", true},
		{"1010:1020:", "1000:1012:1003", true},
		{"1000:1012:1003", "1010:1020:", false},              // p sees 1003 and 1012.., s does not
		{"1000:1012:1003", "1000:1005:1003", true},           // p older
		{"1000:1012:1003", "1000:1014:1003,1012,1013", true}, // 1012,1013 in progress in p
		{"1000:1012:1003", "1000:1014:1003,1012", false},
		{"1000:1012:1003,1005", "1004:1006:1005", false}, // p sees 1003
	} {
		if got := must(c.s).Covers(must(c.p)); got != c.want {
			t.Errorf("%s covers %s = %v, want %v", c.s, c.p, got, c.want)
		}
	}
	m := Meet(must("1000:1012:1003"), must("1005:1010:1006"), must("998:1020:999,1015"))
	if got, want := m.String(), "998:1010:999,1003,1006"; got != want {
		t.Fatalf("Meet = %s, want %s", got, want)
	}
	for _, s := range []string{"1000:1012:1003", "1005:1010:1006", "998:1020:999,1015"} {
		if !must(s).Covers(m) {
			t.Errorf("%s does not cover the meet %s", s, m)
		}
	}
}
