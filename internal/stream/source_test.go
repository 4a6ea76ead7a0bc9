package stream

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/dbconn"
)

// TestHeaderSource: the source identity travels in the header; a header without it (written
// before the field existed) still reads; one without a database oid is refused.
func TestHeaderSource(t *testing.T) {
	for _, src := range []*dbconn.Identity{
		{SystemID: "7301234567890123456", StartedAt: "2026-01-01T00:00:00.000001Z", DatabaseOID: 16384, Database: "shop", Where: "app@db:5432/shop"},
		nil,
	} {
		h := testHeader("none", 2)
		h.Source = src
		var buf bytes.Buffer
		if _, err := NewWriter(&buf, h); err != nil {
			t.Fatal(err)
		}
		if src == nil && strings.Contains(buf.String(), `"source"`) {
			t.Error("a header without source names one")
		}
		r, err := NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		got := r.Header().Source
		if (got == nil) != (src == nil) || got != nil && *got != *src {
			t.Fatalf("source %+v read back as %+v", src, got)
		}
	}
	h := testHeader("none", 2)
	h.Source = &dbconn.Identity{Database: "x"}
	if _, err := NewWriter(&bytes.Buffer{}, h); err == nil || errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "database_oid") {
		t.Fatalf("a source without database oid: %v", err)
	}
}
