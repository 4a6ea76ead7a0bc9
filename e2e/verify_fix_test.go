package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestVerifyEmitFixRepairs: `pgverify --emit-fix | pgdelta apply` makes a damaged target clean.
func TestVerifyEmitFixRepairs(t *testing.T) {
	for _, name := range []string{"pgverify", "pgdelta"} {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not built", name)
			}
			t.Skip("waiting for " + name)
		}
	}
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := `CREATE SCHEMA "Sales"; CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE "Sales"."Order Lines"(o int, line int, note text, amount numeric, f float8, tags text[], m mood, at timestamptz, PRIMARY KEY (o, line));
CREATE TABLE plain(id bigint PRIMARY KEY, v text);`
	fill := `INSERT INTO "Sales"."Order Lines" SELECT g / 10, g % 10, E'n\t' || g, g * 1.5, g / 3.0, ARRAY['a', 'b ' || g], 'ok', '2024-01-01'::timestamptz + g * interval '1 s' FROM generate_series(1, 500) g;
INSERT INTO plain SELECT g, 'v' || g FROM generate_series(1, 300) g;`
	src.Exec(t, ddl+fill)
	dst.Exec(t, ddl+fill+`
DELETE FROM "Sales"."Order Lines" WHERE o = 7;
UPDATE "Sales"."Order Lines" SET note = NULL WHERE o = 8 AND line = 1;
UPDATE "Sales"."Order Lines" SET f = f + 1e-13 WHERE o = 9 AND line = 2;
UPDATE "Sales"."Order Lines" SET note = note || ' ' WHERE o = 10 AND line = 3;
INSERT INTO "Sales"."Order Lines" VALUES (999, 1, 'extra', 1, 1, '{}', 'sad', now());
DELETE FROM plain WHERE id % 50 = 0; UPDATE plain SET v = '' WHERE id = 7; INSERT INTO plain VALUES (1000, 'x');`)

	verify := func() (string, int) {
		cmd := exec.Command("pgverify", "--source", src.URL, "--target", dst.URL)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := verify(); code != 1 {
		t.Fatalf("damaged target: exit %d\n%s", code, out)
	}
	cmd := exec.Command("bash", "-c", `pgverify --emit-fix --source "$S" --target "$D" -j 2 | pgdelta apply --target "$D"; echo "rc=${PIPESTATUS[0]},${PIPESTATUS[1]}"`)
	cmd.Env = append(os.Environ(), "S="+src.URL, "D="+dst.URL)
	out, err := cmd.CombinedOutput()
	// pgverify exits 1 (differences found), pgdelta apply 0.
	if err != nil || !strings.Contains(string(out), "rc=1,0") || !strings.Contains(string(out), "3 changed") {
		t.Fatalf("fix pipeline: %v\n%s", err, out)
	}
	if out, code := verify(); code != 0 {
		t.Fatalf("after the fix: exit %d\n%s", code, out)
	}
	pgtest.RequireSameData(t, src.URL, dst.URL)
}
