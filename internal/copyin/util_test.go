package copyin

import (
	"bytes"
	"os"
	"strconv"
	"testing"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
func fmtInt(i int) string                { return strconv.Itoa(i) }

func corruptFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x08
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
