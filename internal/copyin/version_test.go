package copyin

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/stream"
)

// checkOn runs checkTables on db for one stream table t with the given columns.
func checkOn(t *testing.T, db *pgtest.DB, cols ...string) error {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = checkTables(ctx, conn, &stream.Header{Tables: []stream.Table{{Name: "public.t", Columns: cols}}})
	return err
}

// TestCheckTablesGeneratedColumn: a stream column that is generated on the target is refused by
// name, the stored columns are accepted.
func TestCheckTablesGeneratedColumn(t *testing.T) {
	dst := pgtest.Target(t)
	if dst.Cluster.Version < 120000 {
		t.Skipf("target is PostgreSQL %d: generated columns start at 12", dst.Cluster.Major())
	}
	dst.Exec(t, "CREATE TABLE t (id int PRIMARY KEY, v int, g int GENERATED ALWAYS AS (v * 2) STORED)")
	if err := checkOn(t, dst, "id", "v"); err != nil {
		t.Fatalf("stored columns refused: %v", err)
	}
	if err := checkOn(t, dst, "id", "v", "g"); err == nil || !strings.Contains(err.Error(), `column "g" is generated on the target`) {
		t.Fatalf("generated column accepted: %v", err)
	}
}

// TestCheckTablesBefore12: on a server without generated columns (PostgreSQL 11) the catalog
// query leaves out attgenerated, and columns are still told apart. The matrix runs it on an 11
// source, loaded as if it were a target.
func TestCheckTablesBefore12(t *testing.T) {
	db := pgtest.Source(t)
	if db.Cluster.Version >= 120000 {
		t.Skipf("source is PostgreSQL %d: this test needs a server before 12 (the matrix runs it on 11)", db.Cluster.Major())
	}
	db.Exec(t, "CREATE TABLE t (id int PRIMARY KEY, v int)")
	if err := checkOn(t, db, "id", "v"); err != nil {
		t.Fatalf("PostgreSQL %d: %v", db.Cluster.Major(), err)
	}
	if err := checkOn(t, db, "id", "w"); err == nil || !strings.Contains(err.Error(), `column "w" does not exist on the target`) {
		t.Fatalf("missing column accepted: %v", err)
	}
}
