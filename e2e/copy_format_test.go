package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestCopyBinaryFormat pipes the real binaries with --format auto over the round-trip types
// without the composite column: the tables go as binary COPY (enum, domain, arrays, ranges and
// every built-in type included) and arrive equal. A table with a composite column goes as text
// in the same stream and arrives equal too.
func TestCopyBinaryFormat(t *testing.T) {
	needTools(t, "pgcopyout", "pgcopyin")
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, typesDDL)
	src.Exec(t, typesData)
	dst.Exec(t, typesDDL)
	for _, db := range []*pgtest.DB{src, dst} {
		db.Exec(t, `ALTER TABLE "Odd Schema"."All Types" DROP COLUMN comp;
			CREATE TABLE public.composite(id int PRIMARY KEY, p "Odd Schema".pair)`)
	}
	src.Exec(t, `INSERT INTO public.composite SELECT i, ROW(i, 'c' || i)::"Odd Schema".pair FROM generate_series(1, 500) i`)

	plan, err := exec.Command("pgcopyout", "--source", src.URL, "--one-off", "--plan", "--split-size", "32kB").Output()
	if err != nil {
		t.Fatalf("pgcopyout --plan: %v", err)
	}
	var h struct {
		Tables []struct{ Name, Format string }
	}
	if err := json.Unmarshal(plan, &h); err != nil {
		t.Fatal(err)
	}
	formats := map[string]string{}
	for _, tb := range h.Tables {
		formats[tb.Name] = tb.Format
	}
	if formats["Odd Schema.All Types"] != "binary" || formats["public.uu"] != "binary" || formats["public.composite"] != "text" {
		t.Fatalf("formats chosen: %v; want binary for built-in types, enums and domains, text for a composite", formats)
	}

	sh := `pgcopyout --source "$SRC" -j 4 --one-off --split-size 32kB --progress none | pgcopyin --target "$DST" -j 4 --progress none`
	cmd := exec.Command("bash", "-o", "pipefail", "-c", sh)
	cmd.Env = append(cmd.Environ(), "SRC="+src.URL, "DST="+dst.URL, "PGFERRY_FORMAT=auto")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", sh, err, stderr.String())
	}
	pgtest.RequireSameData(t, src.URL, dst.URL)
	var chunks int
	if err := connectURL(t, dst.URL).QueryRow(ctxb, `SELECT count(*) FROM pgferry.copy_chunks WHERE table_name = 'Odd Schema.All Types'`).Scan(&chunks); err != nil {
		t.Fatal(err)
	}
	if chunks < 2 {
		t.Fatalf("All Types loaded in %d chunk(s); the test wants split binary chunks", chunks)
	}
}

// TestCopyBinaryTypeMismatch: a target column of another type cannot take binary data; the
// chunk is rolled back and the hint says to use --format text, which then loads it.
func TestCopyBinaryTypeMismatch(t *testing.T) {
	needTools(t, "pgcopyout", "pgcopyin")
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, `CREATE TABLE t(id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 100) i`)
	dst.Exec(t, `CREATE TABLE t(id int PRIMARY KEY, v bigint)`)
	run := func(format string) (string, error) {
		sh := `pgcopyout --source "$SRC" --one-off --progress none --format ` + format + ` | pgcopyin --target "$DST" --progress none`
		cmd := exec.Command("bash", "-o", "pipefail", "-c", sh)
		cmd.Env = append(cmd.Environ(), "SRC="+src.URL, "DST="+dst.URL)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		return stderr.String(), err
	}
	msg, err := run("binary")
	if err == nil || !strings.Contains(msg, "--format text") {
		t.Fatalf("binary into a bigint column: err %v, stderr:\n%s", err, msg)
	}
	var n int
	if err := connectURL(t, dst.URL).QueryRow(ctxb, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows committed after the failure (%v)", n, err)
	}
	if msg, err := run("text"); err != nil {
		t.Fatalf("--format text: %v\n%s", err, msg)
	}
	pgtest.RequireSameData(t, src.URL, dst.URL)
}

// TestCopyCtidRestart: a table stored out of key order is split by ctid ranges; when the target
// holds only part of it (here: one chunk's record lost), a resumed pipeline cannot finish it
// under a new snapshot, so pgcopyout marks it restart and pgcopyin empties it and loads it whole:
// no duplicate, no gap.
func TestCopyCtidRestart(t *testing.T) {
	needTools(t, "pgcopyout", "pgcopyin")
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := `CREATE TABLE uu(k uuid PRIMARY KEY, v text); CREATE TABLE other(id int PRIMARY KEY)`
	src.Exec(t, ddl)
	dst.Exec(t, ddl)
	src.Exec(t, `INSERT INTO uu SELECT md5(i::text)::uuid, repeat('v', 50) FROM generate_series(1, 5000) i;
		INSERT INTO other SELECT generate_series(1, 10); ANALYZE`)
	run := func() string {
		sh := `pgcopyout --source "$SRC" -j 2 --one-off --split-size 64kB --progress none --target "$DST" | pgcopyin --target "$DST" -j 2 --progress none`
		cmd := exec.Command("bash", "-o", "pipefail", "-c", sh)
		cmd.Env = append(cmd.Environ(), "SRC="+src.URL, "DST="+dst.URL)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", sh, err, stderr.String())
		}
		return stderr.String()
	}
	run()
	pgtest.RequireSameData(t, src.URL, dst.URL)
	var ctid int
	if err := connectURL(t, dst.URL).QueryRow(ctxb, `SELECT count(*) FROM pgferry.copy_plan WHERE table_name = 'public.uu' AND kind = 'ctid'`).Scan(&ctid); err != nil || ctid < 2 {
		t.Fatalf("uu not split by ctid ranges: %d chunks (%v)", ctid, err)
	}
	dst.Exec(t, `DELETE FROM pgferry.copy_chunks WHERE table_name = 'public.uu' AND chunk = 1`)
	msg := run()
	if !strings.Contains(msg, "public.uu") || !strings.Contains(msg, "again whole") {
		t.Errorf("no word of the restart: %s", msg)
	}
	pgtest.RequireSameData(t, src.URL, dst.URL)
}
