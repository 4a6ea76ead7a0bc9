package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestMigrateLargeObjects moves a table whose oid column points to large objects with
// migrate.sh and cutover.sh while a writer creates, rewrites, replaces and unlinks large objects
// (each with a write to the table in the same transaction, as applications do). Afterwards the
// large objects are the same on both sides, oid for oid and byte for byte, with their owners
// and ACLs, every row's oid points to an object, and pgverify exits 0.
func TestMigrateLargeObjects(t *testing.T) {
	requireTools(t)
	t.Parallel()
	m := newEmptyMigration(t, false)
	sfx := fmt.Sprint(rand.IntN(1e9))
	owner, reader := "lo_app_"+sfx, "lo_ro_"+sfx
	mustExec(t, m.srcSuper, fmt.Sprintf(`CREATE ROLE %[1]s LOGIN; CREATE ROLE %[2]s;
CREATE TABLE public.docs(id int PRIMARY KEY, title text NOT NULL, body oid NOT NULL);
GRANT ALL ON public.docs TO %[1]s; GRANT SELECT ON public.docs TO %[2]s; -- so 'pgschema roles' creates both on the target
INSERT INTO public.docs SELECT g, 'doc ' || g, lo_from_bytea(0, convert_to(repeat(md5(g::text), g * 5), 'UTF8')) FROM generate_series(1, 150) g;
INSERT INTO public.docs SELECT g, 'big ' || g, lo_from_bytea(0, (SELECT string_agg(md5((g * 100000 + i)::text), '') FROM generate_series(1, 50000) i)::bytea) FROM generate_series(151, 153) g;
DO $$ DECLARE o oid; BEGIN
  FOR o IN SELECT body FROM public.docs LOOP EXECUTE format('ALTER LARGE OBJECT %%s OWNER TO %[1]s', o); END LOOP;
  FOR o IN SELECT body FROM public.docs WHERE id %% 10 = 0 LOOP EXECUTE format('GRANT SELECT ON LARGE OBJECT %%s TO %[2]s', o); END LOOP;
END $$;`, owner, reader))
	t.Cleanup(func() {
		for _, u := range []string{m.srcSuper, m.dstSuper} {
			execQuiet(u, fmt.Sprintf("DROP OWNED BY %s, %s", owner, reader))
		}
		for _, c := range []string{"source", "target"} {
			execQuiet(pgtest.Shared(t, c).URL("postgres"), fmt.Sprintf("DROP ROLE IF EXISTS %s; DROP ROLE IF EXISTS %s", owner, reader))
		}
	})
	w := startLOWriter(t, pgtest.Shared(t, "source").URLAs(dbName(t, m.srcSuper), owner), 153)
	out := m.script(t, 0, "migrate.sh")
	if !strings.Contains(out, "large objects: copying them (pgdelta lo-sync") || !loSummaryRE.MatchString(out) {
		t.Fatalf("migrate.sh did not copy the large objects as a step of its own")
	}
	before := w.ops.Load()
	time.Sleep(4 * time.Second) // large objects change after migrate.sh copied them
	if n := w.ops.Load() - before; n < 5 {
		t.Fatalf("the writer changed only %d large objects between migrate.sh and cutover.sh", n)
	}
	cut := m.script(t, 0, "cutover.sh")
	w.stop()
	t.Logf("writer: %d transactions committed, %d refused (by the freeze)", w.ops.Load(), w.refused.Load())
	if !strings.Contains(cut, "lo-sync: copying the large objects that changed") || !strings.Contains(cut, " lo-sync=") {
		t.Errorf("cutover.sh did not run lo-sync in the window or did not print its cost")
	}
	src, dst := loDump(t, m.srcSuper), loDump(t, m.dstSuper)
	if src != dst {
		t.Fatalf("large objects differ after the cutover\nsource:\n%s\ntarget:\n%s", src, dst)
	}
	if n := strings.Count(src, "\n"); n < 150 {
		t.Fatalf("only %d large objects on the source", n)
	}
	if !strings.Contains(src, reader+"=r/"+owner) {
		t.Fatalf("the source has no ACL naming %s: the test compares no grants", reader)
	}
	pgtest.RequireSameData(t, m.srcSuper, m.dstSuper)
	if n := queryInt(t, m.dstSuper, `SELECT count(*) FROM docs d WHERE NOT EXISTS (SELECT 1 FROM pg_largeobject_metadata m WHERE m.oid = d.body)`); n != 0 {
		t.Fatalf("%d rows on the target point to no large object", n)
	}
	verify := exec.Command("pgverify", "--source", m.srcSuper, "--target", m.dstSuper, "--json", "--no-record")
	vout, err := verify.Output()
	if err != nil {
		t.Fatalf("pgverify after the cutover: %v\n%s", err, vout)
	}
	var lo struct{ Status string }
	for _, line := range bytes.Split(bytes.TrimSpace(vout), []byte("\n")) {
		if bytes.Contains(line, []byte(`"table":"pg_largeobject"`)) {
			if err := json.Unmarshal(line, &lo); err != nil {
				t.Fatal(err)
			}
		}
	}
	if lo.Status != "same" {
		t.Fatalf("pgverify did not report pg_largeobject the same:\n%s", vout)
	}
}

var loSummaryRE = regexp.MustCompile(`large objects: 1[0-9]{2} on the source; [0-9]+ created, 0 rewritten`)

func dbName(t *testing.T, url string) string {
	return queryString(t, url, "SELECT current_database()")
}

// loDump is every large object of url, one "oid owner acl size md5" a line.
func loDump(t *testing.T, url string) string {
	return queryString(t, url, `SELECT coalesce(string_agg(format('%s %s %s %s %s', oid, pg_get_userbyid(lomowner), coalesce(lomacl::text, '-'),
  length(lo_get(oid)), md5(lo_get(oid))), E'\n' ORDER BY oid) || E'\n', '') FROM pg_largeobject_metadata`)
}

// loWriter changes large objects and the rows that point to them until stopped.
type loWriter struct {
	ops, refused atomic.Int64
	cancel       context.CancelFunc
	wg           sync.WaitGroup
}

func (w *loWriter) stop() { w.cancel(); w.wg.Wait() }

func startLOWriter(t *testing.T, url string, maxID int) *loWriter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &loWriter{cancel: cancel}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, maxID)
	for i := range ids {
		ids[i] = i + 1
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer conn.Close(context.Background())
		next := maxID + 1
		for n := 0; ctx.Err() == nil; n++ {
			data := bytes.Repeat([]byte(fmt.Sprintf("w%d.", n)), 20+rand.IntN(2000))
			if n%25 == 0 {
				data = bytes.Repeat(data, 1+(1<<20)/len(data)) // now and then one bigger than a MB
			}
			i := rand.IntN(len(ids))
			id := ids[i]
			if n%4 == 0 {
				id = next
			}
			if err := pgx.BeginFunc(ctx, conn, loOp(ctx, n%4, id, data)); err != nil {
				if ctx.Err() == nil {
					w.refused.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
				continue
			}
			w.ops.Add(1)
			switch n % 4 {
			case 0:
				ids = append(ids, next)
				next++
			case 3:
				ids = append(ids[:i], ids[i+1:]...)
			}
			pause := 20 * time.Millisecond
			if n%10 == 9 {
				pause = 1500 * time.Millisecond // gaps: a catch-up until caught up needs an empty batch
			}
			time.Sleep(pause)
		}
	}()
	return w
}

// loOp is one of the writer's transactions on row id: 0 a new row with a new object, 1 the
// object rewritten in place, 2 replaced by a new one, 3 the row and its object deleted. Each
// also writes the table, as applications do (so the write fence stops it).
func loOp(ctx context.Context, kind, id int, data []byte) func(tx pgx.Tx) error {
	exec := func(tx pgx.Tx, qs ...string) error {
		for _, q := range qs {
			args := []any{id}
			if strings.Contains(q, "$2") {
				args = append(args, data)
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	}
	qs := map[int][]string{
		0: {"INSERT INTO docs VALUES ($1, 'new', lo_from_bytea(0, $2))"},
		1: {"SELECT lo_put(body, 0, $2) FROM docs WHERE id = $1", "UPDATE docs SET title = title || '+' WHERE id = $1"},
		2: {"SELECT lo_unlink(body) FROM docs WHERE id = $1", "UPDATE docs SET body = lo_from_bytea(0, $2) WHERE id = $1"},
		3: {"SELECT lo_unlink(body) FROM docs WHERE id = $1", "DELETE FROM docs WHERE id = $1"},
	}[kind]
	return func(tx pgx.Tx) error { return exec(tx, qs...) }
}
