package verify

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestLargeObjects: pgverify reports large objects as table pg_largeobject, same when both sides
// hold the same oids, owners, ACLs and bytes, and names by oid what is missing, extra or changed.
func TestLargeObjects(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	objects := `CREATE TABLE docs(id int PRIMARY KEY, body oid);
INSERT INTO docs VALUES (1, 7301), (2, 7302), (3, 7303), (4, 7304);
SELECT lo_from_bytea(7301, 'one'::bytea);
SELECT lo_from_bytea(7302, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 50000) g)::bytea);
SELECT lo_from_bytea(7303, ''::bytea);
SELECT lo_from_bytea(7304, 'four'::bytea);
GRANT SELECT ON LARGE OBJECT 7304 TO PUBLIC;`
	src.Exec(t, objects)
	dst.Exec(t, objects)
	cfg := Config{SourceURL: src.URL, TargetURL: dst.URL, NoRecord: true}
	code, rs, diag := run(t, cfg)
	lo := byTable(rs)["pg_largeobject"]
	if code != ExitSame || lo == nil || lo.Status != StatusSame || *lo.SourceRows != 4 || *lo.TargetRows != 4 {
		t.Fatalf("equal sides: exit %d, result %+v (stderr %s)", code, lo, diag)
	}

	// One byte in the second MB of 7302, 7303 gone, an extra 7399, and an ACL changed.
	dst.Exec(t, `SELECT lo_put(7302, 1200000, 'X'::bytea); SELECT lo_unlink(7303); SELECT lo_from_bytea(7399, 'stray'::bytea);
REVOKE SELECT ON LARGE OBJECT 7304 FROM PUBLIC;`)
	code, rs, _ = run(t, cfg)
	lo = byTable(rs)["pg_largeobject"]
	if code != ExitDiffer || lo == nil || lo.Status != StatusDiffer || lo.Missing != 1 || lo.Extra != 1 || lo.Changed != 2 {
		t.Fatalf("differing sides: exit %d, result %+v", code, lo)
	}
	var got []string
	for _, d := range lo.Diffs {
		got = append(got, d.Kind+" "+d.Key["oid"]+" "+strings.Join(d.Columns, ","))
	}
	if want := "changed 7302 data|missing 7303 |changed 7304 acl|extra 7399 "; strings.Join(got, "|") != want {
		t.Fatalf("diffs %q, want %q", strings.Join(got, "|"), want)
	}
	if r := byTable(rs)["public.docs"]; r == nil || r.Status != StatusSame {
		t.Fatalf("table docs: %+v", r)
	}

	// The text report names them by oid too.
	var out bytes.Buffer
	cfg.Mode, cfg.Jobs, cfg.MaxDiffs, cfg.HashFunc, cfg.SkipSchemas = "hash", 2, 1000, "auto", []string{"pgferry"}
	if code, err := Run(t.Context(), cfg, &out, io.Discard, io.Discard); code != ExitDiffer || err != nil {
		t.Fatalf("text run: exit %d, %v", code, err)
	}
	for _, line := range []string{"pg_largeobject: missing key oid=7303", "pg_largeobject: changed key oid=7302: columns data", "1 missing, 1 extra, 2 changed"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("report lacks %q:\n%s", line, out.String())
		}
	}

	// Counts only in count mode; nothing with --no-large-objects.
	if code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, NoRecord: true, Mode: "count"}); code != ExitSame || byTable(rs)["pg_largeobject"].Status != StatusSame {
		t.Fatalf("count mode: exit %d, %+v", code, byTable(rs)["pg_largeobject"])
	}
	if code, rs, _ := run(t, Config{SourceURL: src.URL, TargetURL: dst.URL, NoRecord: true, NoLargeObjects: true}); code != ExitSame || byTable(rs)["pg_largeobject"] != nil {
		t.Fatalf("--no-large-objects: exit %d, results %+v", code, rs)
	}
}
