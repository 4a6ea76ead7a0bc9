package lobj

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkSync measures, against live servers, what lo-sync costs: the first copy, a re-run
// with nothing changed (the cutover window's cost when the objects did not change: both sides
// listed and hashed) and a re-run after 1% of the objects changed. Run with
//
//	CI=true go test -run XXX -bench Sync -benchtime 1x ./internal/lobj/
func BenchmarkSync(b *testing.B) {
	for _, c := range []struct {
		name    string
		objects int
		md5s    int // size of each object, in 32-byte md5 texts
	}{
		{"2000x10KB", 2000, 320},
		{"20x5MB", 20, 160000},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				f := newFixture(b)
				f.src.Exec(b, fmt.Sprintf(`SELECT lo_from_bytea(0, (SELECT string_agg(md5((g * 1000003 + i)::text), '') FROM generate_series(1, %d) i)::bytea)
FROM generate_series(1, %d) g;
DO $$ DECLARE o oid; BEGIN
  FOR o IN SELECT oid FROM pg_largeobject_metadata LOOP EXECUTE format('ALTER LARGE OBJECT %%s OWNER TO %s', o); END LOOP;
END $$`, c.md5s, c.objects, f.own))
				mb := float64(c.objects*c.md5s*32) / 1e6
				cfg := f.cfg()
				cfg.Workers = 2
				timed(b, cfg, "copy", mb, c.objects)
				timed(b, cfg, "unchanged", mb, c.objects)
				f.src.Exec(b, fmt.Sprintf("SELECT lo_put(oid, 100, 'changed'::bytea) FROM pg_largeobject_metadata ORDER BY oid LIMIT %d", max(c.objects/100, 1)))
				if sum := timed(b, cfg, "1pct", mb, c.objects); sum.Rewritten != int64(max(c.objects/100, 1)) {
					b.Fatalf("rewrote %d objects", sum.Rewritten)
				}
			}
		})
	}
}

// timed runs Sync and reports its seconds, per MB and per object, as metrics named name.
func timed(b *testing.B, cfg Config, name string, mb float64, objects int) Summary {
	start := time.Now()
	sum, err := Sync(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	s := time.Since(start).Seconds()
	b.ReportMetric(s, name+"_s")
	b.ReportMetric(s*1000/mb, name+"_ms/MB")
	b.ReportMetric(s*1e6/float64(objects), name+"_us/obj")
	b.Logf("%s: %.2f s for %.1f MB in %d objects: %+v", name, s, mb, objects, sum)
	return sum
}
