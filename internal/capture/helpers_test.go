package capture

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var roleSeq atomic.Int64

// ownerDB gives a fresh database with an ordinary (non-superuser) role that owns the schema
// "App Data" and may create schemas, plus a writer role. setup runs as the owner.
type ownerDB struct {
	*pgtest.DB
	Owner, Writer string
}

func newOwnerDB(t *testing.T, setup string) *ownerDB {
	t.Helper()
	db := pgtest.Source(t)
	n := roleSeq.Add(1)
	suffix := strings.ToLower(strings.ReplaceAll(db.Name, "-", "_"))
	if len(suffix) > 40 {
		suffix = suffix[len(suffix)-40:]
	}
	o := &ownerDB{DB: db, Owner: fmt.Sprintf("own_%d_%s", n, suffix), Writer: fmt.Sprintf("wr_%d_%s", n, suffix)}
	db.Exec(t, fmt.Sprintf(`CREATE ROLE %[1]s LOGIN NOSUPERUSER; CREATE ROLE %[2]s LOGIN NOSUPERUSER;
GRANT CREATE, CONNECT ON DATABASE %[3]s TO %[1]s; GRANT CONNECT ON DATABASE %[3]s TO %[2]s;
GRANT USAGE, CREATE ON SCHEMA public TO %[1]s; GRANT USAGE ON SCHEMA public TO %[2]s;`,
		ident.Quote(o.Owner), ident.Quote(o.Writer), ident.Quote(db.Name)))
	if setup != "" {
		o.ExecAs(t, o.Owner, setup)
	}
	return o
}

// ExecAs runs SQL as role.
func (o *ownerDB) ExecAs(t *testing.T, role, sql string) {
	t.Helper()
	conn := o.Conn(t, role)
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("exec as %s: %v\nSQL: %s", role, err, sql)
	}
}

// Conn connects as role; closed at test end.
func (o *ownerDB) Conn(t *testing.T, role string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, o.URLAs(role))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// deltaRows returns "table key txid" lines of every delta table, sorted; keys are the key
// columns' text joined with "|".
func deltaRows(t *testing.T, conn *pgx.Conn, schema string) []string {
	t.Helper()
	ctx := context.Background()
	reg, err := LoadRegistry(ctx, conn, schema)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range reg {
		parts := make([]string, len(c.KeyColumns))
		for i, k := range c.KeyColumns {
			parts[i] = ident.Quote(k) + "::text"
		}
		rows, err := conn.Query(ctx, fmt.Sprintf("SELECT concat_ws('|', %s), txid FROM %s.%s", strings.Join(parts, ", "), ident.Quote(schema), ident.Quote(c.DeltaTable)))
		if err != nil {
			t.Fatal(err)
		}
		var k string
		var x int64
		if _, err := pgx.ForEachRow(rows, []any{&k, &x}, func() error { out = append(out, fmt.Sprintf("%s %s %d", c.Table.Key(), k, x)); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(out)
	return out
}

func truncateRows(t *testing.T, conn *pgx.Conn, schema string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf("SELECT table_name || ' ' || coalesce(captured_table, '-') || ' ' || txid FROM %s.truncates", ident.Quote(schema)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// diffLines reports up to 10 differences between two sorted lists.
func diffLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d rows, want %d", what, len(got), len(want))
	}
	n := 0
	i, j := 0, 0
	for (i < len(got) || j < len(want)) && n < 10 {
		switch {
		case j >= len(want) || (i < len(got) && got[i] < want[j]):
			t.Errorf("%s: unexpected %s", what, got[i])
			i++
			n++
		case i >= len(got) || want[j] < got[i]:
			t.Errorf("%s: missing %s", what, want[j])
			j++
			n++
		default:
			i++
			j++
		}
	}
}
