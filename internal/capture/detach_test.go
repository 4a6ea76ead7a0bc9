package capture

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestRemovedPartitions: partitions recorded at install that left the tree are told apart as
// detached (with the standalone table's name, columns and pg_class xmin) or dropped, the ones
// below a detached sub-partitioned partition come after it as nested, a renamed partition is not
// removed, and forgetting them empties the list (twice is a no-op). Run as the tables' owner.
func TestRemovedPartitions(t *testing.T) {
	db := newOwnerDB(t, `CREATE TABLE public.ev (id int, p int, v text, PRIMARY KEY (id, p)) PARTITION BY LIST (p);
CREATE TABLE public.ev_0 PARTITION OF public.ev FOR VALUES IN (0); CREATE TABLE public.ev_1 PARTITION OF public.ev FOR VALUES IN (1);
CREATE TABLE public.ev_2 PARTITION OF public.ev FOR VALUES IN (2) PARTITION BY RANGE (id);
CREATE TABLE public.ev_2a PARTITION OF public.ev_2 FOR VALUES FROM (MINVALUE) TO (100);
CREATE TABLE public.ev_3 PARTITION OF public.ev FOR VALUES IN (3); CREATE TABLE public.ev_4 PARTITION OF public.ev FOR VALUES IN (4);`)
	ctx := context.Background()
	conn := db.Conn(t, db.Owner)
	if _, err := Install(ctx, conn, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if r, err := RemovedPartitions(ctx, conn, ""); err != nil || len(r) != 0 {
		t.Fatalf("removed right after install: %+v, %v", r, err)
	}
	db.ExecAs(t, db.Owner, `ALTER TABLE public.ev DETACH PARTITION public.ev_2; ALTER TABLE public.ev DETACH PARTITION public.ev_0;
DROP TABLE public.ev_1; ALTER TABLE public.ev_3 RENAME TO ev_3_renamed; ALTER TABLE public.ev_4 RENAME TO "Ev 4"`)
	removed, err := RemovedPartitions(ctx, conn, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range removed {
		s := fmt.Sprintf("%s %s dropped=%v nested=%v %s %v", r.Table, r.Partition, r.Dropped, r.Nested, r.Quoted, r.Columns)
		if r.Readable == r.Dropped {
			t.Errorf("%s: readable %v, dropped %v (the owner may read every existing one)", r.Partition, r.Readable, r.Dropped)
		}
		if !r.Dropped {
			var xmin string
			if err := conn.QueryRow(ctx, "SELECT xmin::text FROM pg_class WHERE oid = $1::regclass", r.Quoted).Scan(&xmin); err != nil || xmin != r.Xmin {
				t.Errorf("%s: xmin %q, pg_class says %q (%v)", r.Partition, r.Xmin, xmin, err)
			}
		}
		got = append(got, s)
	}
	want := []string{
		"public.ev public.ev_0 dropped=false nested=false public.ev_0 [id p v]",
		"public.ev public.ev_1 dropped=true nested=false  []",
		"public.ev public.ev_2 dropped=false nested=false public.ev_2 [id p v]",
		"public.ev public.ev_2a dropped=false nested=true public.ev_2a [id p v]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("removed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := 0; i < 2; i++ {
		n, err := ForgetPartitions(ctx, conn, "", removed)
		if err != nil || n != int64(4*(1-i)) {
			t.Fatalf("forget %d: %d, %v", i+1, n, err)
		}
	}
	if r, err := RemovedPartitions(ctx, conn, ""); err != nil || len(r) != 0 {
		t.Fatalf("removed after forgetting: %+v, %v", r, err)
	}
}
