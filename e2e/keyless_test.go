package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
)

const keylessDDL = `
CREATE TABLE public.klog (seq int, note text, v float8);
CREATE TABLE public.kidx (id int NOT NULL, note text);
CREATE INDEX kidx_id ON public.kidx (id);
`

const keylessRows = `
INSERT INTO public.klog SELECT g % 500, CASE WHEN g % 9 = 0 THEN NULL ELSE repeat('n', g % 50) END, g / 3.0 FROM generate_series(1, 6000) g;
INSERT INTO public.klog VALUES (NULL, NULL, NULL), (NULL, NULL, NULL);
INSERT INTO public.kidx SELECT g % 3000, 'k' || g % 7 FROM generate_series(1, 6000) g;
ANALYZE;
`

// keylessWrites runs writers on the keyless tables until stop is closed: duplicates, one copy
// of duplicates changed or deleted, rows of NULLs, and a TRUNCATE with a refill now and then.
func keylessWrites(t *testing.T, url string, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close(ctx)
			rng := rand.New(rand.NewPCG(7, uint64(w)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, id := rng.IntN(520), rng.IntN(3100)
				sql := fmt.Sprintf(`BEGIN;
INSERT INTO public.klog SELECT * FROM public.klog WHERE seq = %[1]d LIMIT 1;
UPDATE public.klog SET v = v + 1 WHERE ctid = (SELECT ctid FROM public.klog WHERE seq = %[1]d + 1 LIMIT 1);
DELETE FROM public.klog WHERE ctid = (SELECT ctid FROM public.klog WHERE seq = %[1]d + 2 LIMIT 1);
INSERT INTO public.klog VALUES (NULL, NULL, NULL);
UPDATE public.kidx SET note = note || '.' WHERE id = %[2]d;
INSERT INTO public.kidx VALUES (%[2]d, 'dup'), (%[2]d, 'dup');
COMMIT`, s, id)
				if rng.IntN(60) == 0 {
					sql = `BEGIN; TRUNCATE public.klog; INSERT INTO public.klog SELECT g, 'refill', g FROM generate_series(1, 3000) g; COMMIT`
				}
				if _, err := conn.Exec(ctx, sql); err != nil {
					conn.Exec(ctx, "ROLLBACK")
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return &wg
}

// TestKeylessCopyCatchUp: tables without a key are captured, copied by pgcopyout (in ctid-range
// chunks) while writers change them, TRUNCATE included, and caught up by pgdelta: both sides
// are equal row for row, duplicates counted, and pgverify agrees.
func TestKeylessCopyCatchUp(t *testing.T) {
	needTools(t, "pgtrig", "pgcopyout", "pgcopyin", "pgdelta", "pgverify")
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, keylessDDL+keylessRows)
	dst.Exec(t, keylessDDL)
	run := func(script string) {
		t.Helper()
		cmd := exec.Command("bash", "-c", "set -o pipefail; "+script)
		cmd.Env = append(cmd.Environ(), "S="+src.URL, "D="+dst.URL)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
	}
	run(`pgtrig install --source "$S" >/dev/null`)
	stop := make(chan struct{})
	wg := keylessWrites(t, src.URL, stop)
	time.Sleep(200 * time.Millisecond)
	run(`pgcopyout --source "$S" -j 2 --split-size 16kB --progress none | pgcopyin --target "$D" -j 2 --progress none`)
	// Catch up while the writers go on (--until-caught-up would never see an empty batch).
	run(`timeout -s INT 3 pgdelta sync --source "$S" --target "$D" --follow 2>/dev/null; rc=$?; [ $rc -eq 124 ] || [ $rc -eq 0 ] || [ $rc -eq 130 ]`)
	close(stop)
	wg.Wait()
	run(`pgdelta sync --source "$S" --target "$D" --until-caught-up`)
	pgtest.RequireSameData(t, src.URL, dst.URL, "pgferry")
	run(`pgverify --source "$S" --target "$D" --mode hash`)
}
