package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/stream"
)

const bankDDL = `
CREATE TABLE acc_a(id int PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE acc_b(id text PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE acc_c(id uuid PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE transfers(id bigserial PRIMARY KEY, txid bigint NOT NULL DEFAULT txid_current(),
  from_tab text NOT NULL, from_id text NOT NULL, to_tab text NOT NULL, to_id text NOT NULL, amount bigint NOT NULL);
CREATE TABLE audit(seq int, txid bigint, note text);  -- no key: copied by ctid ranges, rows move on UPDATE
`

const bankAccounts = 3000

const bankData = `
INSERT INTO acc_a SELECT i, 1000 FROM generate_series(1, 3000) i;
INSERT INTO acc_b SELECT 'k' || i, 1000 FROM generate_series(1, 3000) i;
INSERT INTO acc_c SELECT md5(i::text)::uuid, 1000 FROM generate_series(1, 3000) i;
INSERT INTO audit SELECT i, 0, repeat('a', 40) FROM generate_series(1, 3000) i;
ANALYZE;
`

// bankKey returns the text key of account i of table tab.
func bankKey(tab string, i int) string {
	switch tab {
	case "acc_b":
		return fmt.Sprintf("k%d", i)
	case "acc_c":
		return fmt.Sprintf("md5('%d')::uuid::text", i)
	}
	return fmt.Sprint(i)
}

// TestCopyoutConsistency: writers move money between accounts in three tables (keeping the total),
// log every transfer and insert and update rows of a keyless table, while pgcopyout -j 4 copies
// with small chunks. The target must equal the source as of the header's position: the total
// holds, exactly the transfers visible in that snapshot are there, every balance equals the
// replay of those transfers, and the keyless table has no row twice and none missing.
func TestCopyoutConsistency(t *testing.T) {
	needTools(t, "pgcopyout", "pgcopyin")
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, bankDDL)
	src.Exec(t, bankData)
	dst.Exec(t, bankDDL)
	// capture before the copy's snapshot (invariant 1), as pgtrig installs it
	if out, err := exec.Command("pgtrig", "install", "--source", src.URL).CombinedOutput(); err != nil {
		t.Fatalf("pgtrig install: %v\n%s", err, out)
	}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var commits atomic.Int64
	tabs := []string{"acc_a", "acc_b", "acc_c"}
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(seed))
			conn, err := pgx.Connect(context.Background(), src.URL)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close(context.Background())
			for ctx.Err() == nil {
				ft, tt := tabs[rnd.Intn(3)], tabs[rnd.Intn(3)]
				fi, ti := 1+rnd.Intn(bankAccounts), 1+rnd.Intn(bankAccounts)
				amt := 1 + rnd.Intn(50)
				fk, tk := bankKey(ft, fi), bankKey(tt, ti)
				sql := fmt.Sprintf(`BEGIN;
UPDATE %[1]s SET balance = balance - %[5]d WHERE id::text = %[2]s;
UPDATE %[3]s SET balance = balance + %[5]d WHERE id::text = %[4]s;
INSERT INTO transfers(from_tab, from_id, to_tab, to_id, amount) VALUES ('%[1]s', %[2]s, '%[3]s', %[4]s, %[5]d);
INSERT INTO audit VALUES (-1, txid_current(), 'new');
UPDATE audit SET note = note || 'u', txid = txid_current() WHERE seq = %[6]d;
COMMIT;`, ft, quoteKey(fk), tt, quoteKey(tk), amt, 1+rnd.Intn(3000))
				if _, err := conn.Exec(context.Background(), sql); err != nil {
					conn.Exec(context.Background(), "ROLLBACK") // deadlock between writers: try another
					continue
				}
				commits.Add(1)
			}
		}(int64(w))
	}
	defer func() { stop(); wg.Wait() }()
	for commits.Load() < 20 {
		time.Sleep(10 * time.Millisecond)
	}
	file := filepath.Join(t.TempDir(), "copy.stream")
	out, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	before := commits.Load()
	cmd := exec.Command("pgcopyout", "--source", src.URL, "-j", "4", "--split-size", "16kB", "--progress", "none")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pgcopyout: %v\n%s", err, stderr.String())
	}
	out.Close()
	time.Sleep(50 * time.Millisecond)
	stop()
	wg.Wait()
	during := commits.Load() - before
	t.Logf("%d transfers committed while pgcopyout ran", during)

	load := exec.Command("pgcopyin", "--target", dst.URL, "-j", "4", "--progress", "none")
	in, _ := os.Open(file)
	defer in.Close()
	load.Stdin, load.Stderr = in, &stderr
	if err := load.Run(); err != nil {
		t.Fatalf("pgcopyin: %v\n%s", err, stderr.String())
	}
	in.Seek(0, 0)
	r, err := stream.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	pos := r.Header().Position
	split := 0
	for _, tb := range r.Header().Tables {
		if len(tb.Chunks) > 1 {
			split++
		}
	}
	if split < 4 {
		t.Fatalf("only %d tables split into chunks; the test needs small chunks", split)
	}

	s, d := connectURL(t, src.URL), connectURL(t, dst.URL)
	// The snapshot is neither before nor after all the writes.
	var visible, invisible int64
	if err := s.QueryRow(ctxb, `SELECT count(*) FILTER (WHERE txid_visible_in_snapshot(txid, $1::txid_snapshot)),
		count(*) FILTER (WHERE NOT txid_visible_in_snapshot(txid, $1::txid_snapshot)) FROM transfers`, pos).Scan(&visible, &invisible); err != nil {
		t.Fatal(err)
	}
	if visible == 0 || invisible == 0 {
		t.Fatalf("position %s sees %d transfers and misses %d: the writers did not overlap the copy", pos, visible, invisible)
	}
	// 1. The total holds on the target.
	var total int64
	if err := d.QueryRow(ctxb, "SELECT (SELECT sum(balance) FROM acc_a) + (SELECT sum(balance) FROM acc_b) + (SELECT sum(balance) FROM acc_c)").Scan(&total); err != nil {
		t.Fatal(err)
	}
	if want := int64(3 * bankAccounts * 1000); total != want {
		t.Errorf("target total %d, want %d: chunks were read under different snapshots", total, want)
	}
	// 2. Exactly the transfers visible in the position, with all their columns.
	want := lines(t, s, `SELECT t::text FROM transfers t WHERE txid_visible_in_snapshot(txid, $1::txid_snapshot)`, pos)
	got := lines(t, d, `SELECT t::text FROM transfers t`)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("target has %d transfers, the position sees %d (or they differ)", len(got), len(want))
	}
	// 3. Every balance is the replay of those transfers.
	for _, tab := range tabs {
		replay := lines(t, s, fmt.Sprintf(`SELECT a.id::text || ' ' || (1000 + coalesce((SELECT sum(CASE WHEN to_tab = '%[1]s' AND to_id = a.id::text THEN amount ELSE 0 END)
			- sum(CASE WHEN from_tab = '%[1]s' AND from_id = a.id::text THEN amount ELSE 0 END)
			FROM transfers WHERE txid_visible_in_snapshot(txid, $1::txid_snapshot) AND (to_id = a.id::text OR from_id = a.id::text)), 0))
			FROM %[1]s a`, tab), pos)
		have := lines(t, d, fmt.Sprintf(`SELECT id::text || ' ' || balance FROM %s`, tab))
		if strings.Join(have, "\n") != strings.Join(replay, "\n") {
			t.Errorf("%s: target balances differ from the replay of the transfers visible at %s", tab, pos)
		}
	}
	// 4. The keyless table: the original rows once each, and one new row per visible transfer.
	var n, distinct, news int64
	if err := d.QueryRow(ctxb, "SELECT count(*) FILTER (WHERE seq > 0), count(DISTINCT seq) FILTER (WHERE seq > 0), count(*) FILTER (WHERE seq = -1) FROM audit").Scan(&n, &distinct, &news); err != nil {
		t.Fatal(err)
	}
	if n != 3000 || distinct != 3000 || news != int64(len(want)) {
		t.Errorf("audit on target: %d original rows (%d distinct), %d new; want 3000, 3000, %d", n, distinct, news, len(want))
	}
	// pgcopyin recorded the one snapshot for every chunk.
	snaps := lines(t, d, "SELECT DISTINCT snapshot FROM pgferry.copy_chunks")
	if len(snaps) != 1 || snaps[0] != pos {
		t.Errorf("copy_chunks snapshots %v, want just %s", snaps, pos)
	}
}

func quoteKey(k string) string {
	if strings.HasPrefix(k, "md5(") {
		return k
	}
	return "'" + k + "'"
}

// lines runs a one-column query and returns its rows sorted.
func lines(t *testing.T, conn *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(ctxb, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}
