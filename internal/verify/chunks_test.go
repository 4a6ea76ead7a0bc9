package verify

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestCtidChunksCoverEveryPage: block ranges are contiguous, start at 0 and end open.
func TestCtidChunksCoverEveryPage(t *testing.T) {
	re := regexp.MustCompile(`'\((\d+),0\)'`)
	for _, tc := range []struct{ bytes, n int64 }{{10 * 8192, 3}, {1000 * 8192, 7}, {8192, 5}, {3 * 8192, 300}, {0, 4}} {
		cs := ctidChunks(tc.bytes, tc.n)
		if len(cs) == 1 {
			if cs[0].where != "true" {
				t.Errorf("%+v: single chunk %q", tc, cs[0].where)
			}
			continue
		}
		next := int64(0)
		for i, c := range cs {
			m := re.FindAllStringSubmatch(c.where, -1)
			bounds := make([]int64, len(m))
			for j := range m {
				bounds[j], _ = strconv.ParseInt(m[j][1], 10, 64)
			}
			switch {
			case i == 0:
				if !strings.HasPrefix(c.where, "ctid <") || len(bounds) != 1 {
					t.Fatalf("%+v: first chunk %q", tc, c.where)
				}
				next = bounds[0]
			case i == len(cs)-1:
				if len(bounds) != 1 || bounds[0] != next || strings.Contains(c.where, "<") {
					t.Fatalf("%+v: last chunk %q, want open from %d", tc, c.where, next)
				}
			default:
				if len(bounds) != 2 || bounds[0] != next || bounds[1] <= bounds[0] {
					t.Fatalf("%+v: chunk %d %q does not start at %d", tc, i, c.where, next)
				}
				next = bounds[1]
			}
		}
	}
}

// TestChunkedTablesFindDifferences: a plain table read by block ranges (each side its own, and
// the target's rows stored in another order) and a partitioned one read by shared key ranges,
// both split into many chunks, with a missing, an extra and a changed row each: every key found,
// and identical tables are clean.
func TestChunkedTablesFindDifferences(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := `CREATE TABLE plain (id int PRIMARY KEY, v text);
		CREATE TABLE parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
		CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (2500);
		CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (2500) TO (10000);
		CREATE TABLE same (id int PRIMARY KEY, v text);`
	fill := func(order string) string {
		return fmt.Sprintf(`INSERT INTO plain SELECT g, repeat('x', 50) || g FROM generate_series(1, 5000) g ORDER BY g %[1]s;
			INSERT INTO parted SELECT g, repeat('y', 50) || g FROM generate_series(1, 5000) g ORDER BY g %[1]s;
			INSERT INTO same SELECT g, md5(g::text) FROM generate_series(1, 5000) g ORDER BY g %[1]s; ANALYZE;`, order)
	}
	src.Exec(t, ddl+fill("ASC"))
	dst.Exec(t, ddl+fill("DESC"))
	for _, tb := range []string{"plain", "parted"} {
		dst.Exec(t, fmt.Sprintf(`DELETE FROM %[1]s WHERE id = 17; UPDATE %[1]s SET v = v || ' ' WHERE id = 2600; INSERT INTO %[1]s VALUES (9000, 'extra')`, tb))
	}
	for _, hash := range []string{"auto", "client"} {
		code, rs, diag := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, ChunkRows: 300, Jobs: 3, HashFunc: hash})
		if code != ExitDiffer {
			t.Fatalf("%s: exit %d, want %d\n%s", hash, code, ExitDiffer, diag)
		}
		for _, tb := range []string{"public.plain", "public.parted"} {
			r := byTable(rs)[tb]
			got := map[string]string{}
			for _, d := range r.Diffs {
				got[d.Key["id"]] = d.Kind
			}
			want := map[string]string{"17": "missing", "2600": "changed", "9000": "extra"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s %s: diffs %v, want %v", hash, tb, got, want)
			}
			if *r.SourceRows != 5000 || *r.TargetRows != 5000 {
				t.Errorf("%s %s: rows %d/%d, want 5000/5000", hash, tb, *r.SourceRows, *r.TargetRows)
			}
		}
		if r := byTable(rs)["public.same"]; r.Status != StatusSame {
			t.Errorf("%s: identical table reported %s %+v", hash, r.Status, r.Diffs)
		}
	}
}
