package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
)

const deltaDDL = `
CREATE SCHEMA "App Data";
CREATE TABLE "App Data"."Accts"(id int PRIMARY KEY, email text NOT NULL UNIQUE, bal numeric(12,2), note text);
CREATE TABLE public.items(k1 text, k2 int, v jsonb, PRIMARY KEY (k1, k2));
CREATE TABLE public.logs(id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, msg text);
`

const deltaSeed = `
INSERT INTO "App Data"."Accts" SELECT g, 'u' || g || '@x', g, NULL FROM generate_series(1, 300) g;
INSERT INTO public.items SELECT 'k' || (g % 5), g, jsonb_build_object('g', g) FROM generate_series(1, 300) g;
INSERT INTO public.logs(msg) SELECT 'm' || g FROM generate_series(1, 30) g;
`

// deltaCopy copies the tables under one snapshot and records it in the target's copy_chunks,
// as pgcopyout | pgcopyin would; it returns the snapshot.
func deltaCopy(t *testing.T, srcURL, dstURL string, tables ...string) string {
	t.Helper()
	ctx := context.Background()
	src, err := pgx.Connect(ctx, srcURL)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	dst, err := pgx.Connect(ctx, dstURL)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close(ctx)
	tx, err := src.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var snap string
	if err := tx.QueryRow(ctx, "SELECT txid_current_snapshot()::text").Scan(&snap); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS pgferry; CREATE TABLE IF NOT EXISTS pgferry.copy_chunks (table_name text NOT NULL, chunk integer NOT NULL,
  snapshot text NOT NULL, rows bigint NOT NULL, bytes bigint NOT NULL, done_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (table_name, chunk))`); err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		var buf bytes.Buffer
		if _, err := tx.Conn().PgConn().CopyTo(ctx, &buf, "COPY (SELECT * FROM "+tb+") TO STDOUT"); err != nil {
			t.Fatal(err)
		}
		if _, err := dst.PgConn().CopyFrom(ctx, &buf, "COPY "+tb+" FROM STDIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := dst.Exec(ctx, "INSERT INTO pgferry.copy_chunks VALUES ($1, 0, $2, 0, 0)", tb, snap); err != nil {
			t.Fatal(err)
		}
	}
	return snap
}

// deltaWriters runs n writers of random transactions on the source until stop is closed.
func deltaWriters(t *testing.T, url string, n int, seed uint64, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range n {
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
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				id, id2 := rng.IntN(350)+1, rng.IntN(350)+1
				var sql string
				switch rng.IntN(8) {
				case 0:
					sql = fmt.Sprintf(`INSERT INTO "App Data"."Accts" VALUES (%d, 'n%d-%d@x', 1, 'i') ON CONFLICT DO NOTHING`, id, id, rng.IntN(1e6))
				case 1:
					sql = fmt.Sprintf(`UPDATE "App Data"."Accts" SET bal = bal + 1, note = E'a\\\\b\n%d' WHERE id = %d`, id2, id)
				case 2:
					sql = fmt.Sprintf(`DELETE FROM "App Data"."Accts" WHERE id = %d`, id)
				case 3:
					sql = fmt.Sprintf(`UPDATE "App Data"."Accts" SET id = %d WHERE id = %d AND NOT EXISTS (SELECT 1 FROM "App Data"."Accts" WHERE id = %d)`, id2+400, id, id2+400)
				case 4:
					sql = fmt.Sprintf(`BEGIN; UPDATE "App Data"."Accts" SET email = 'tmp' || email WHERE id = %[1]d;
UPDATE "App Data"."Accts" SET email = coalesce((SELECT substr(email, 4) FROM "App Data"."Accts" WHERE id = %[1]d), email) WHERE id = %[2]d;
UPDATE "App Data"."Accts" SET email = 's%[1]d-%[3]d@x' WHERE id = %[1]d; COMMIT`, id, id2, rng.IntN(1e6))
				case 5:
					sql = fmt.Sprintf(`INSERT INTO public.items VALUES ('k%d', %d, '{"x":1}') ON CONFLICT (k1, k2) DO UPDATE SET v = '[%d]'`, id%5, id, id2)
				case 6:
					sql = fmt.Sprintf(`DELETE FROM public.items WHERE k2 = %d; INSERT INTO public.logs(msg) VALUES ('w')`, id)
				case 7:
					if rng.IntN(10) == 0 {
						sql = `BEGIN; TRUNCATE public.logs; INSERT INTO public.logs(msg) VALUES ('t'); COMMIT`
					} else {
						sql = `BEGIN; DELETE FROM public.items; ROLLBACK`
					}
				}
				if _, err := conn.Exec(ctx, sql); err != nil {
					conn.Exec(ctx, "ROLLBACK")
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	return &wg
}

func pgdeltaOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("pgdelta", args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("pgdelta %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// TestDeltaStreamApplyKill pipes pgdelta stream into pgdelta apply while the source is written
// to, SIGKILLs one side at random moments and restarts from pgdelta position; the end state
// must equal the source exactly.
func TestDeltaStreamApplyKill(t *testing.T) {
	needTools(t, "pgdelta", "pgtrig")
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, deltaDDL+deltaSeed)
	dst.Exec(t, deltaDDL)
	if out, err := exec.Command("pgtrig", "install", "--source", src.URL).CombinedOutput(); err != nil {
		t.Fatalf("pgtrig install: %v\n%s", err, out)
	}
	stop := make(chan struct{})
	wg := deltaWriters(t, src.URL, 3, 42, stop)
	time.Sleep(200 * time.Millisecond)
	deltaCopy(t, src.URL, dst.URL, `"App Data"."Accts"`, "public.items", "public.logs")

	rng := rand.New(rand.NewPCG(7, 7))
	kills := 0
	for round := range 4 {
		from := pgdeltaOut(t, "position", "--target", dst.URL)
		stream := exec.Command("pgdelta", "stream", "--source", src.URL, "--from", from, "--follow", "--max-interval", "50ms", "--max-batch", fmt.Sprint(rng.IntN(2)*40))
		apply := exec.Command("pgdelta", "apply", "--target", dst.URL)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stream.Stdout, apply.Stdin = w, r
		var serr, aerr bytes.Buffer
		stream.Stderr, apply.Stderr = &serr, &aerr
		if err := stream.Start(); err != nil {
			t.Fatal(err)
		}
		if err := apply.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		r.Close()
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
		victim, other := stream, apply
		if rng.IntN(2) == 0 {
			victim, other = apply, stream
		}
		victim.Process.Signal(syscall.SIGKILL)
		victim.Wait()
		kills++
		done := make(chan struct{})
		go func() { other.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			other.Process.Signal(syscall.SIGKILL)
			<-done
		}
		if strings.Contains(aerr.String(), "lost") || strings.Contains(aerr.String(), "refus") {
			t.Fatalf("round %d: apply: %s", round, aerr.String())
		}
	}
	close(stop)
	wg.Wait()
	// Catch up for good through the pipe, from the recorded position.
	from := pgdeltaOut(t, "position", "--target", dst.URL)
	cmd := exec.Command("bash", "-c", `set -o pipefail; pgdelta stream --source "$1" --from "$2" --until-caught-up | pgdelta apply --target "$3"`, "x", src.URL, from, dst.URL)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final catch-up: %v\n%s", err, out)
	}
	if out, err := exec.Command("pgdelta", "status", "--source", src.URL, "--target", dst.URL).CombinedOutput(); err != nil {
		t.Fatalf("status after catch-up: %v\n%s", err, out)
	}
	pgtest.RequireSameData(t, src.URL, dst.URL, "pgferry")
	t.Logf("%d kills", kills)
}
