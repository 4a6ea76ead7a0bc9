package cliutil

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"256MB": 256 << 20, "1.5GB": 3 << 29, "64kB": 64 << 10, "100": 100, "8 MiB": 8 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := ParseSize("12 parsecs"); err == nil {
		t.Error("bad unit accepted")
	}
}
