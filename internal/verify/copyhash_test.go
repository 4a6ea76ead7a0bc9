package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// scanAllRows feeds data to a rowScanner in pieces of size step and returns "keyhash rowhash
// extras" per row.
func scanAllRows(t *testing.T, data []byte, bin bool, nk, nh, extra, step int) ([]string, error) {
	t.Helper()
	var out []string
	rs := &rowScanner{binary: bin, nk: nk, nh: nh, nExtra: extra, onRow: func(kh, rh uint64, ex [][]byte) error {
		out = append(out, fmt.Sprintf("%x %x %q", kh, rh, ex))
		return nil
	}}
	for i := 0; i < len(data); i += step {
		if _, err := rs.Write(data[i:min(i+step, len(data))]); err != nil {
			return out, err
		}
	}
	return out, rs.finish()
}

// TestRowScanner: rows cut anywhere give the same hashes as whole; key extras come back decoded
// in both formats; a key's hash does not depend on the other columns; a cut stream is an error.
func TestRowScanner(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, `CREATE TABLE t (k text, v text, n int);
		INSERT INTO t VALUES (E'tab\there', E'new\nline \\ back', 1), ('plain', NULL, 2), (E'x\\y', '', NULL), ('plain2', NULL, 2)`)
	conn, err := pgx.Connect(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	q := "COPY (SELECT k, v, n, k FROM t ORDER BY n, k) TO STDOUT"
	for _, bin := range []bool{false, true} {
		sql := q
		if bin {
			sql += " (FORMAT binary)"
		}
		var buf bytes.Buffer
		if _, err := conn.PgConn().CopyTo(context.Background(), &buf, sql); err != nil {
			t.Fatal(err)
		}
		whole, err := scanAllRows(t, buf.Bytes(), bin, 1, 3, 1, len(buf.Bytes()))
		if err != nil {
			t.Fatalf("binary=%v: %v", bin, err)
		}
		if len(whole) != 4 {
			t.Fatalf("binary=%v: %d rows, want 4", bin, len(whole))
		}
		for _, step := range []int{1, 3, 7} {
			cut, err := scanAllRows(t, buf.Bytes(), bin, 1, 3, 1, step)
			if err != nil || fmt.Sprint(cut) != fmt.Sprint(whole) {
				t.Fatalf("binary=%v step %d: %v\n%v\nwant\n%v", bin, step, err, cut, whole)
			}
		}
		for _, want := range []string{`["tab\there"]`, `["x\\y"]`} {
			found := false
			for _, r := range whole {
				found = found || bytes.HasSuffix([]byte(r), []byte(want))
			}
			if !found {
				t.Errorf("binary=%v: no row ends with key %s: %v", bin, want, whole)
			}
		}
		// The same key with NULL, '' and a tab in the other columns: the key hash agrees, the
		// row hashes all differ.
		var hashes []string
		for _, v := range []string{"NULL::text, ''", "'', NULL::text", "E'\t', ''", "'', E'\t'"} {
			var one bytes.Buffer
			sql := "COPY (SELECT 'a'::text, " + v + ") TO STDOUT"
			if bin {
				sql += " (FORMAT binary)"
			}
			if _, err := conn.PgConn().CopyTo(context.Background(), &one, sql); err != nil {
				t.Fatal(err)
			}
			r, err := scanAllRows(t, one.Bytes(), bin, 1, 3, 0, 2)
			if err != nil || len(r) != 1 {
				t.Fatalf("binary=%v %s: %v %v", bin, v, r, err)
			}
			hashes = append(hashes, r[0])
		}
		for i := range hashes {
			for j := range i {
				ki, kj := bytes.Fields([]byte(hashes[i]))[0], bytes.Fields([]byte(hashes[j]))[0]
				if !bytes.Equal(ki, kj) {
					t.Errorf("binary=%v: key hash of the same key differs: %s / %s", bin, hashes[i], hashes[j])
				}
				if hashes[i] == hashes[j] {
					t.Errorf("binary=%v: rows %d and %d hash alike: %s", bin, i, j, hashes[i])
				}
			}
		}
		if _, err := scanAllRows(t, buf.Bytes()[:len(buf.Bytes())-3], bin, 1, 3, 1, 5); !errors.Is(err, errCopyFraming) {
			t.Errorf("binary=%v: a cut stream gave %v, want a framing error", bin, err)
		}
	}
}
