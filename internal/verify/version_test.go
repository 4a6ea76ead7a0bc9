package verify

import (
	"context"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestPlanChunksByVersion: a big plain table is read by block ranges of each side's own heap only
// when both servers scan ctid ranges by range (PostgreSQL 14+); when either is older it is read
// by key ranges shared by both sides. The matrix runs the older branch with an 11 and a 13 source.
func TestPlanChunksByVersion(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := "CREATE TABLE plain (id int PRIMARY KEY, v text); INSERT INTO plain SELECT g, repeat('x', 50) FROM generate_series(1, 5000) g; ANALYZE plain;"
	src.Exec(t, ddl)
	dst.Exec(t, ddl)
	ctx := context.Background()
	s, err := openSide(ctx, src.URL, dbconn.Source, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	d, err := openSide(ctx, dst.URL, dbconn.Target, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	pairs, err := listPairs(ctx, s.exporter, d.exporter, Config{SkipSchemas: []string{"pgferry"}})
	if err != nil || len(pairs) != 1 {
		t.Fatalf("pairs %v: %v", pairs, err)
	}
	pl, err := planChunks(ctx, s, d, pairs[0], 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.chunks[0]) < 2 {
		t.Fatalf("plain not split: %+v", pl.chunks[0])
	}
	blocks := strings.HasPrefix(pl.chunks[0][0].where, "ctid")
	want := src.Cluster.Version >= 140000 && dst.Cluster.Version >= 140000
	if blocks != want || pl.shared == want {
		t.Errorf("PostgreSQL %d -> %d: block ranges %v (shared key ranges %v), want block ranges %v; first chunk %q",
			src.Cluster.Major(), dst.Cluster.Major(), blocks, pl.shared, want, pl.chunks[0][0].where)
	}
}

// TestFloatTypesAcrossVersions: equal float values of every kind (scalars, arrays, geometric
// types) are the same whatever the two servers print for them: PostgreSQL 11 prints 17 digits
// where 12+ prints the shortest exact form. A different value is still found.
func TestFloatTypesAcrossVersions(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := `CREATE TABLE fl (id int PRIMARY KEY, f8 float8, f4 real, a8 float8[], a4 real[], p point, b box, c circle);
		INSERT INTO fl SELECT g, g / 3.0, g / 7.0, ARRAY[0.1, g / 3.0], ARRAY[0.1, g / 7.0]::real[], point(0.1, g / 3.0),
		  box(point(0.1, 0.2), point(g / 3.0, 1)), circle(point(0.1, 0.3), g / 7.0) FROM generate_series(1, 200) g;`
	src.Exec(t, ddl)
	dst.Exec(t, ddl)
	for _, hash := range []string{"auto", "md5", "client"} {
		if code, rs, diag := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, HashFunc: hash}); code != ExitSame {
			t.Errorf("PostgreSQL %d -> %d, --hash %s: exit %d %+v\n%s", src.Cluster.Major(), dst.Cluster.Major(), hash, code, byTable(rs)["public.fl"], diag)
		}
	}
	dst.Exec(t, "UPDATE fl SET a8[2] = a8[2] + 1e-15 WHERE id = 9")
	code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL})
	if r := byTable(rs)["public.fl"]; code != ExitDiffer || len(r.Diffs) != 1 || r.Diffs[0].Key["id"] != "9" {
		t.Errorf("changed array element: exit %d %+v", code, r)
	}
}
