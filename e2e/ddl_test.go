package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// ddlRun runs a bash pipeline with $S and $D set and returns its exit code and combined output.
func ddlRun(t *testing.T, src, dst *pgtest.DB, script string) (int, string) {
	t.Helper()
	cmd := exec.Command("bash", "-c", "set -o pipefail; "+script)
	cmd.Env = append(cmd.Environ(), "S="+src.URL, "D="+dst.URL)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return 0, string(out)
}

// TestDDLRecreatedTable drives the real tools through a table dropped and re-created under the
// same name during catch-up, with a writer on another table throughout: pgdelta sync, pgtrig
// status and a new pgcopyout of that table all stop with exit 3, naming the table, what changed
// and the repair; the repair (pgtrig install --force -t, pgcopyout -t | pgcopyin --truncate,
// pgdelta sync) reaches equality while the other table was never copied again.
func TestDDLRecreatedTable(t *testing.T) {
	needTools(t, "pgtrig", "pgcopyout", "pgcopyin", "pgdelta")
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := `CREATE TABLE public.keep (id int PRIMARY KEY, v int); CREATE TABLE public.redo (id int PRIMARY KEY, v text);`
	src.Exec(t, ddl+`INSERT INTO public.keep SELECT g, 0 FROM generate_series(1, 500) g; INSERT INTO public.redo SELECT g, 'old' FROM generate_series(1, 200) g`)
	dst.Exec(t, ddl)
	must := func(script string) string {
		t.Helper()
		code, out := ddlRun(t, src, dst, script)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", script, code, out)
		}
		return out
	}
	must(`pgtrig install --source "$S" >/dev/null`)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the application keeps writing the table the DDL does not touch
		defer wg.Done()
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, src.URL)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			conn.Exec(ctx, fmt.Sprintf("UPDATE public.keep SET v = v + 1 WHERE id = %d; INSERT INTO public.keep VALUES (%d, 1) ON CONFLICT DO NOTHING", i%500+1, 1000+i))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	must(`pgcopyout --source "$S" --progress none | pgcopyin --target "$D" --progress none`)
	// Follow for a while (with the writer on, --until-caught-up would never see an empty batch).
	follow := `timeout -s INT 3 pgdelta sync --source "$S" --target "$D" --follow; rc=$?; [ $rc -eq 124 ] || [ $rc -eq 0 ] || [ $rc -eq 130 ]`
	must(follow)

	// The application's deploy re-creates the table; the operator makes the target's match.
	src.Exec(t, `DROP TABLE public.redo; CREATE TABLE public.redo (id int PRIMARY KEY, v text); INSERT INTO public.redo SELECT g, 'new' FROM generate_series(1, 150) g`)
	dst.Exec(t, `DROP TABLE public.redo; CREATE TABLE public.redo (id int PRIMARY KEY, v text)`)
	for _, c := range []struct{ name, script string }{
		{"pgdelta sync", `pgdelta sync --source "$S" --target "$D" --follow`},
		{"pgtrig status", `pgtrig status --source "$S" >/dev/null`},
		{"pgcopyout", `pgcopyout --source "$S" -t public.redo --progress none >/dev/null`},
	} {
		code, out := ddlRun(t, src, dst, c.script)
		t.Logf("%s: exit %d\n%s", c.name, code, out)
		if code != 3 || !strings.Contains(out, "public.redo: dropped and re-created") ||
			!strings.Contains(out, "pgtrig install --force -t public.redo") || !strings.Contains(out, "pgcopyin --target TARGET --truncate") {
			t.Errorf("%s after the table was re-created: exit %d, want 3 with the table, the change and the repair:\n%s", c.name, code, out)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// The repair the message names.
	must(`pgtrig install --source "$S" --force -t public.redo >/dev/null`)
	src.Exec(t, `UPDATE public.redo SET v = 'changed after repair' WHERE id < 10`)
	must(`pgcopyout --source "$S" -t public.redo --progress none | pgcopyin --target "$D" --truncate --progress none`)
	src.Exec(t, `DELETE FROM public.redo WHERE id > 140`)
	must(follow)
	close(stop)
	wg.Wait()
	must(`pgdelta sync --source "$S" --target "$D" --until-caught-up`)
	pgtest.RequireSameData(t, src.URL, dst.URL, "pgferry")
}
