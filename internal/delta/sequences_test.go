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

// TestSelectSequences: the table filters select the sequences their tables own (a partitioned
// table's through any partition -t names); a sequence no table owns follows -n/-N.
func TestSelectSequences(t *testing.T) {
	src := pgtest.Source(t)
	src.Exec(t, `CREATE SCHEMA app; CREATE TABLE ev (id serial, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE ev_2024 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY); CREATE SEQUENCE free; CREATE SEQUENCE app.other;`)
	ctx := context.Background()
	for _, tc := range []struct {
		f    catalog.Filter
		want string
	}{
		{catalog.Filter{Tables: []string{"EV_2024"}}, "app.other public.ev_id_seq public.free"},
		{catalog.Filter{ExcludeTables: []string{"ev"}}, "app.other public.free public.t_id_seq"},
		{catalog.Filter{Schemas: []string{"public"}, ExcludeTables: []string{"ev"}}, "public.free public.t_id_seq"},
		{catalog.Filter{ExcludeSchemas: []string{"app"}, ExcludeTables: []string{"t", "ev"}}, "public.free"},
	} {
		f, err := tc.f.Compile()
		if err != nil {
			t.Fatal(err)
		}
		seqs, err := selectSequences(ctx, connect(t, src.URL), f, []string{"pgferry"})
		var got []string
		for _, s := range seqs {
			got = append(got, s.Key())
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("%+v: %v, %v; want %s", tc.f, got, err, tc.want)
		}
	}
}
