package delta

import (
	"context"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// recorder is a Sink that keeps each upsert as "table: col,col = value,value".
type recorder struct{ upserts []string }

func (r *recorder) Begin(from, to, at string) error { return nil }
func (r *recorder) Upsert(table string, cols []string, vals [][]byte) error {
	v := make([]string, len(vals))
	for i, x := range vals {
		v[i] = string(x)
	}
	r.upserts = append(r.upserts, table+": "+strings.Join(cols, ",")+" = "+strings.Join(v, ","))
	return nil
}
func (r *recorder) Delete(table string, cols []string, vals [][]byte) error { return nil }
func (r *recorder) Rows(table string, cols []string, vals [][]byte, n int64) error {
	return nil
}
func (r *recorder) Truncate(table string) error { return nil }
func (r *recorder) RemovePartition(table, partition string, dropped bool) error {
	return nil
}
func (r *recorder) FlushPoint() error                  { return nil }
func (r *recorder) Commit(to string, rows int64) error { return nil }

// TestBatchSendsStoredColumns: a batch's rows hold the stored columns only. From 12 a generated
// column is left out (the target computes it); 11 has no attgenerated, and the batch reads every
// column there (the old branch).
func TestBatchSendsStoredColumns(t *testing.T) {
	src := pgtest.Source(t)
	gen := ""
	if src.Cluster.Version >= 120000 {
		gen = "len int GENERATED ALWAYS AS (length(msg)) STORED, "
	}
	src.Exec(t, "CREATE TABLE public.g (id int PRIMARY KEY, msg text, "+gen+"note text)")
	installCapture(t, src.URL)
	ctx := context.Background()
	conn := connect(t, src.URL)
	var from string
	if err := conn.QueryRow(ctx, "SELECT txid_current_snapshot()::text").Scan(&from); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, "INSERT INTO public.g (id, msg, note) VALUES (1, 'hello', 'n')")
	var rec recorder
	res, err := (&Reader{Conn: conn, CaptureSchema: "pgferry"}).Batch(ctx, from, &rec, false)
	if err != nil {
		t.Fatalf("server %d: %v", src.Cluster.Version, err)
	}
	if want := "public.g: id,msg,note = 1,hello,n"; res.Rows != 1 || strings.Join(rec.upserts, "|") != want {
		t.Fatalf("server %d: batch sent %q (%d rows), want %q", src.Cluster.Version, rec.upserts, res.Rows, want)
	}
}
