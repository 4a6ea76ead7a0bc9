package dbconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/pgtest"
)

// ownerRole creates a non-superuser role owning db (as a migration's owner would) and returns its URL.
func ownerRole(t *testing.T, db *pgtest.DB) string {
	t.Helper()
	role := "own_" + db.Name
	if len(role) > 60 {
		role = role[:60]
	}
	db.Exec(t, `CREATE ROLE "`+role+`" LOGIN; ALTER DATABASE "`+db.Name+`" OWNER TO "`+role+`"`)
	t.Cleanup(func() {
		db.Cluster.DropDB(db.Name)
		db.Cluster.Exec(context.Background(), "postgres", `DROP ROLE IF EXISTS "`+role+`"`)
	})
	return db.URLAs(role)
}

func identify(t *testing.T, url string) Identity {
	t.Helper()
	ctx := context.Background()
	conn, err := Connect(ctx, url, Source, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	id, err := Identify(ctx, conn, url)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestIdentitySameDatabase: one database reached as a URL and as a key=value string, by a
// non-superuser, is the same; another database of the same cluster and a database of another
// cluster are not. The system identifier is readable by a plain role on every version.
func TestIdentitySameDatabase(t *testing.T) {
	src := pgtest.Source(t)
	url := ownerRole(t, src)
	role := strings.TrimPrefix(strings.SplitN(url, "@", 2)[0], "postgres://")
	kv := fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=disable", src.Cluster.SockDir, src.Cluster.Port, src.Name, role)
	a, b := identify(t, url), identify(t, kv)
	if a.SystemID == "" || a.DatabaseOID == 0 || a.StartedAt == "" || a.Database != src.Name {
		t.Fatalf("identity of a plain role's database on %d: %+v", src.Cluster.Version, a)
	}
	if same, why := SameDatabase(a, b); !same || !strings.Contains(why, "system identifier") {
		t.Fatalf("URL and key=value of one database: same=%v (%s)\n%+v\n%+v", same, why, a, b)
	}
	if strings.Contains(a.Where, "password") || !strings.Contains(a.Where, src.Name) {
		t.Errorf("where = %q", a.Where)
	}
	other := identify(t, pgtest.Source(t).URL)
	if same, _ := SameDatabase(a, other); same {
		t.Errorf("two databases of one cluster are the same: %+v %+v", a, other)
	}
	tgt := identify(t, pgtest.Target(t).URL)
	if same, _ := SameDatabase(a, tgt); same || tgt.SystemID == a.SystemID {
		t.Errorf("source and target clusters are the same: %+v %+v", a, tgt)
	}
	err := RefuseSame(a, b)
	var sd *SameDatabaseError
	var ee *cliutil.ExitError
	if !errors.As(err, &sd) || !errors.As(err, &ee) || ee.Code != cliutil.ExitUsage {
		t.Fatalf("RefuseSame = %v, want exit 2 with *SameDatabaseError", err)
	}
	if !strings.Contains(err.Error(), src.Name) || !strings.HasPrefix(err.Error(), "refuse target ") {
		t.Errorf("message: %v", err)
	}
}

// TestIdentityWithoutSystemID: where pg_control_system() is revoked (as a managed service may),
// the server start time stands in, also against a side that can read the system identifier;
// inside a transaction the attempt does not abort it.
func TestIdentityWithoutSystemID(t *testing.T) {
	src := pgtest.Source(t)
	url := ownerRole(t, src)
	src.Exec(t, "REVOKE EXECUTE ON FUNCTION pg_catalog.pg_control_system() FROM PUBLIC")
	plain, super := identify(t, url), identify(t, src.URL)
	if plain.SystemID != "" || super.SystemID == "" {
		t.Fatalf("revoked: plain %+v, superuser %+v", plain, super)
	}
	if same, why := SameDatabase(plain, super); !same || !strings.Contains(why, "started at") {
		t.Fatalf("fallback: same=%v (%s)", same, why)
	}
	if same, _ := SameDatabase(plain, identify(t, pgtest.Target(t).URL)); same {
		t.Error("fallback: another cluster is the same")
	}
	ctx := context.Background()
	conn, err := Connect(ctx, src.URL, Source, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := Identify(ctx, conn, src.URL); err != nil {
			return err
		}
		var n int
		return tx.QueryRow(ctx, "SELECT 1").Scan(&n)
	})
	if err != nil {
		t.Fatalf("identify inside a transaction: %v", err)
	}
}

func TestIdentityToken(t *testing.T) {
	in := Identity{SystemID: "7301234567890123456", StartedAt: "2026-01-01T00:00:00.000001Z", DatabaseOID: 16384, Database: "a&b=c d", Where: "app@/tmp:5432/a&b=c d"}
	out, err := ParseToken(in.Token())
	if err != nil || out != in {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	if _, err := ParseToken("database=x"); err == nil {
		t.Error("a token without database_oid parsed")
	}
	if got := Describe("postgres://u:secret@h:6543/d?sslmode=disable"); got != "u@h:6543/d" {
		t.Errorf("Describe = %q", got)
	}
}
