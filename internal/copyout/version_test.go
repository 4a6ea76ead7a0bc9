package copyout

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/stream"
)

// TestRunPlansCtidRangesFrom14: the plan follows the source's version. From PostgreSQL 14 a
// keyless table is split into ctid ranges, and so is a table whose key is stored out of order
// (auto) or when --split-by ctid asks; before 14, where each ctid range would be read by a scan
// of the whole table, the keyless table is one chunk and keyed tables are split by key ranges
// whatever --split-by says.
func TestRunPlansCtidRangesFrom14(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, `CREATE TABLE heap(a int, b text);
		INSERT INTO heap SELECT i, repeat('h', 80) FROM generate_series(1, 8000) i;
		CREATE TABLE shuffled(id uuid PRIMARY KEY, v text);
		INSERT INTO shuffled SELECT md5(i::text)::uuid, repeat('s', 60) FROM generate_series(1, 8000) i;
		ANALYZE;`)
	plan := func(splitBy string) map[string]stream.Table {
		cfg := baseConfig(db.URL)
		cfg.OneOff, cfg.PlanOnly, cfg.SplitBy = true, true, splitBy
		var out bytes.Buffer
		if err := Run(context.Background(), cfg, &out, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		var h stream.Header
		if err := json.Unmarshal(out.Bytes(), &h); err != nil {
			t.Fatal(err)
		}
		m := map[string]stream.Table{}
		for _, tb := range h.Tables {
			m[tb.Name] = tb
		}
		return m
	}
	kinds := func(tb stream.Table) (string, int) {
		return tb.Chunks[0].Kind, len(tb.Chunks)
	}
	ranges := db.Cluster.Version >= 140000
	for _, splitBy := range []string{"auto", "ctid"} {
		p := plan(splitBy)
		heapKind, heapN := kinds(p["public.heap"])
		shufKind, shufN := kinds(p["public.shuffled"])
		if shufN < 2 {
			t.Fatalf("--split-by %s: shuffled not split: %+v", splitBy, p["public.shuffled"])
		}
		switch {
		case ranges && (heapKind != KindCtid || heapN < 2 || shufKind != KindCtid):
			t.Errorf("PostgreSQL %d, --split-by %s: want ctid ranges, got heap %s x%d, shuffled %s x%d", db.Cluster.Major(), splitBy, heapKind, heapN, shufKind, shufN)
		case !ranges && (heapKind != KindAll || heapN != 1 || shufKind != KindKey):
			t.Errorf("PostgreSQL %d (no TID range scans), --split-by %s: want heap whole and key ranges, got heap %s x%d, shuffled %s x%d", db.Cluster.Major(), splitBy, heapKind, heapN, shufKind, shufN)
		}
	}
}
