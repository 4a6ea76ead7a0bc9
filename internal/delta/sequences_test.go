package delta

import (
	"context"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/pgtest"
)

func TestSyncSequences(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	ddl := `CREATE TABLE t(id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY); CREATE SEQUENCE "My Seq"; CREATE SEQUENCE unused;`
	src.Exec(t, ddl+`INSERT INTO t DEFAULT VALUES; INSERT INTO t DEFAULT VALUES; SELECT setval('"My Seq"', 41)`)
	dst.Exec(t, ddl)
	ctx := context.Background()
	var out strings.Builder
	res, err := SyncSequences(ctx, connect(t, src.URL), connect(t, dst.URL), catalog.Filter{}, []string{"pgferry"}, 100, &out)
	if err != nil || len(res) != 3 {
		t.Fatalf("SyncSequences = %v, %v", res, err)
	}
	var seq, ident int64
	c := connect(t, dst.URL)
	if err := c.QueryRow(ctx, `SELECT nextval('"My Seq"'), nextval(pg_get_serial_sequence('t', 'id'))`).Scan(&seq, &ident); err != nil {
		t.Fatal(err)
	}
	if seq != 142 || ident != 103 {
		t.Fatalf("after sync: My Seq next %d (want 142), identity next %d (want 103)\n%s", seq, ident, out.String())
	}
	dst.Exec(t, `DROP SEQUENCE unused`)
	if _, err := SyncSequences(ctx, connect(t, src.URL), connect(t, dst.URL), catalog.Filter{}, []string{"pgferry"}, 0, nil); err == nil || !strings.Contains(err.Error(), "public.unused") {
		t.Fatalf("missing sequence not reported: %v", err)
	}
}
