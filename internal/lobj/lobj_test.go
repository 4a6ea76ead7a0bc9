package lobj

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is a source and a target database with roles: own (owns the objects), rd (the
// non-superuser that reads the source, a member of own) and wr (the non-superuser that writes
// the target, a member of own and rd so it may give objects to them).
type fixture struct {
	src, dst    *pgtest.DB
	own, rd, wr string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	sfx := fmt.Sprintf("%d", rand.IntN(1e9))
	f := &fixture{src: pgtest.Source(t), dst: pgtest.Target(t), own: "lo_own_" + sfx, rd: "lo_rd_" + sfx, wr: "lo_wr_" + sfx}
	roles := fmt.Sprintf(`CREATE ROLE %[1]s; CREATE ROLE %[2]s LOGIN; CREATE ROLE %[3]s LOGIN;
GRANT %[1]s TO %[2]s; GRANT %[1]s, %[2]s TO %[3]s;`, f.own, f.rd, f.wr)
	for _, db := range []*pgtest.DB{f.src, f.dst} {
		db.Exec(t, roles)
		c, name := db.Cluster, []string{f.own, f.rd, f.wr}
		t.Cleanup(func() {
			for _, r := range name {
				c.Exec(context.Background(), "postgres", "DROP OWNED BY "+r+"; DROP ROLE IF EXISTS "+r)
			}
		})
	}
	return f
}

func (f *fixture) cfg() Config {
	return Config{
		Source: func(ctx context.Context) (*pgx.Conn, error) {
			return dbconn.Connect(ctx, f.src.URLAs(f.rd), dbconn.Source, dbconn.Options{AppName: "lobj-test"})
		},
		Target: func(ctx context.Context) (*pgx.Conn, error) {
			return dbconn.Connect(ctx, f.dst.URLAs(f.wr), dbconn.Target, dbconn.Options{AppName: "lobj-test"})
		},
		Workers: 3,
	}
}

// dump is every large object of url as "oid owner acl size md5", read by the superuser.
func dump(t *testing.T, url string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT oid, pg_get_userbyid(lomowner), coalesce(lomacl::text, 'default'),
  length(lo_get(oid)), md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY oid`)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var oid uint32
		var owner, acl, sum string
		var n int64
		if err := rows.Scan(&oid, &owner, &acl, &n, &sum); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d %s %s %d %s", oid, owner, acl, n, sum))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func requireSame(t *testing.T, f *fixture) {
	t.Helper()
	s, d := dump(t, f.src.URL), dump(t, f.dst.URL)
	if strings.Join(s, "\n") != strings.Join(d, "\n") {
		t.Fatalf("large objects differ\nsource:\n%s\ntarget:\n%s", strings.Join(s, "\n"), strings.Join(d, "\n"))
	}
	cmp, err := Compare(context.Background(), f.cfg())
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Same() {
		t.Fatalf("Compare finds differences after a sync: %+v", cmp.Diffs)
	}
}

// seed creates objects of many sizes: empty, small, exactly Chunk, > Chunk and > 2 Chunks, a
// batch of 250 small ones, with owners and grants.
func seed(t *testing.T, f *fixture) {
	f.src.Exec(t, fmt.Sprintf(`
SELECT lo_from_bytea(7001, ''::bytea);
SELECT lo_from_bytea(7002, 'hello'::bytea);
SELECT lo_from_bytea(7003, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, %[1]d / 32) g)::bytea);
SELECT lo_from_bytea(7004, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 80000) g)::bytea || '\x00ff'::bytea);
SELECT lo_from_bytea(7005, 'granted'::bytea);
SELECT lo_from_bytea(8000 + g, convert_to(repeat('x', g), 'UTF8')) FROM generate_series(1, 250) g;
DO $$ DECLARE o oid; BEGIN
  FOR o IN SELECT oid FROM pg_largeobject_metadata LOOP EXECUTE format('ALTER LARGE OBJECT %%s OWNER TO %[2]s', o); END LOOP;
END $$;
ALTER LARGE OBJECT 7002 OWNER TO %[3]s;
GRANT SELECT ON LARGE OBJECT 7005 TO PUBLIC;
GRANT SELECT, UPDATE ON LARGE OBJECT 7005 TO %[3]s WITH GRANT OPTION;
`, Chunk, f.own, f.rd))
}

func TestSyncConverges(t *testing.T) {
	f := newFixture(t)
	seed(t, f)
	ctx := context.Background()
	sum, err := Sync(ctx, f.cfg())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Objects != 255 || sum.Created != 255 || sum.Rewritten != 0 || sum.Removed != 0 || len(sum.Warnings) != 0 {
		t.Fatalf("first sync: %+v", sum)
	}
	if want := int64(5 + Chunk + 80000*32 + 2 + 7 + 250*251/2); sum.Bytes != want {
		t.Fatalf("bytes = %d, want %d", sum.Bytes, want)
	}
	requireSame(t, f)

	// Change the data in the middle of the big object (only its second piece differs), rewrite a
	// small one, unlink one, add one, change an owner and an ACL, and leave an extra on the target.
	f.src.Exec(t, fmt.Sprintf(`
SELECT lo_put(7004, 1500000, 'CHANGED'::bytea);
SELECT lo_put(7002, 0, 'HELLO, world'::bytea);
SELECT lo_unlink(8001);
SELECT lo_from_bytea(7010, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 40000) g)::bytea);
ALTER LARGE OBJECT 7010 OWNER TO %[1]s;
ALTER LARGE OBJECT 8002 OWNER TO %[2]s;
REVOKE SELECT ON LARGE OBJECT 7005 FROM PUBLIC;
`, f.own, f.rd))
	f.dst.Exec(t, fmt.Sprintf(`SELECT lo_from_bytea(9999, 'stray'::bytea); ALTER LARGE OBJECT 9999 OWNER TO %s`, f.own))
	sum, err = Sync(ctx, f.cfg())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Created != 1 || sum.Rewritten != 2 || sum.Removed != 2 || sum.Metadata != 2 {
		t.Fatalf("second sync: %+v", sum)
	}
	requireSame(t, f)
	sum, err = Sync(ctx, f.cfg())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Created+sum.Rewritten+sum.Removed+sum.Metadata+sum.Bytes != 0 {
		t.Fatalf("a sync of equal sides did something: %+v", sum)
	}
}

func TestMissingOwnerRoleWarns(t *testing.T) {
	f := newFixture(t)
	ghost := f.own + "_ghost"
	f.src.Exec(t, fmt.Sprintf(`CREATE ROLE %[1]s; GRANT %[1]s TO %[2]s;
SELECT lo_from_bytea(7100, 'ghostly'::bytea); ALTER LARGE OBJECT 7100 OWNER TO %[1]s;
GRANT SELECT ON LARGE OBJECT 7100 TO %[3]s;`, ghost, f.rd, f.own))
	t.Cleanup(func() {
		f.src.Cluster.Exec(context.Background(), "postgres", "DROP OWNED BY "+ghost+"; DROP ROLE IF EXISTS "+ghost)
	})
	var warn strings.Builder
	cfg := f.cfg()
	cfg.Warnings = &warn
	sum, err := Sync(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Created != 1 || len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], "role "+ghost+" does not exist on the target") ||
		!strings.Contains(warn.String(), `CREATE ROLE "`+ghost+`"`) {
		t.Fatalf("summary %+v, warnings %q", sum, warn.String())
	}
	got := dump(t, f.dst.URL)
	if len(got) != 1 || !strings.HasPrefix(got[0], "7100 "+f.wr+" ") {
		t.Fatalf("target holds %q, want 7100 owned by %s (the target role)", got, f.wr)
	}
	if s := dump(t, f.src.URL); strings.Fields(s[0])[3] != strings.Fields(got[0])[3] || strings.Fields(s[0])[4] != strings.Fields(got[0])[4] {
		t.Fatalf("data differs: source %q, target %q", s, got)
	}
	if !strings.Contains(got[0], f.own+"=r/") {
		t.Fatalf("the grant to %s was not kept: %q", f.own, got[0])
	}
	cmp, err := Compare(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.Diffs) != 1 || cmp.Diffs[0].Kind != "changed" || strings.Join(cmp.Diffs[0].What, ",") != "owner,acl" {
		t.Fatalf("diffs = %+v, want 7100 changed owner,acl", cmp.Diffs)
	}
	// Re-running writes nothing more and warns again.
	if sum, err = Sync(context.Background(), cfg); err != nil || sum.Bytes != 0 || sum.Created != 0 || len(sum.Warnings) != 1 {
		t.Fatalf("re-run: %+v, %v", sum, err)
	}
}

func TestUnreadableObjectIsTypedError(t *testing.T) {
	f := newFixture(t)
	other := f.own + "_other"
	f.src.Exec(t, fmt.Sprintf(`CREATE ROLE %[1]s; SELECT lo_from_bytea(7200, 'secret'::bytea); ALTER LARGE OBJECT 7200 OWNER TO %[1]s;
SELECT lo_from_bytea(7201, 'open'::bytea); ALTER LARGE OBJECT 7201 OWNER TO %[2]s;`, other, f.own))
	t.Cleanup(func() {
		f.src.Cluster.Exec(context.Background(), "postgres", "DROP OWNED BY "+other+"; DROP ROLE IF EXISTS "+other)
	})
	_, err := Sync(context.Background(), f.cfg())
	var ue *UnreadableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want *UnreadableError", err)
	}
	if ue.Count != 1 || ue.Objects[0].OID != 7200 || ue.Objects[0].Owner != other || ue.Role != f.rd {
		t.Fatalf("error = %+v", ue)
	}
	if msg := err.Error() + " " + ue.Remedy(); !strings.Contains(msg, "7200") || !strings.Contains(msg, "owned by "+other) ||
		!strings.Contains(msg, "GRANT SELECT ON LARGE OBJECT 7200 TO "+f.rd) {
		t.Fatalf("message %q", msg)
	}
	if n := pgtest.QueryInt(t, f.dst.URL, "SELECT count(*) FROM pg_largeobject_metadata"); n != 0 {
		t.Fatalf("target holds %d objects after a refused sync, want 0", n)
	}
	f.src.Exec(t, fmt.Sprintf("GRANT SELECT ON LARGE OBJECT 7200 TO %s", f.rd))
	if _, err := Sync(context.Background(), f.cfg()); err != nil {
		t.Fatalf("after the grant: %v", err)
	}
	// 7200's owner is missing on the target: its data arrives, its owner does not.
	if got := dump(t, f.dst.URL); len(got) != 2 {
		t.Fatalf("target holds %q", got)
	}
}

func TestStats(t *testing.T) {
	f := newFixture(t)
	seed(t, f)
	conn, err := f.cfg().Source(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	st, err := ReadStats(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(5 + Chunk + 80000*32 + 2 + 7 + 250*251/2); st.Objects != 255 || st.Bytes != want || st.Unread != 0 {
		t.Fatalf("stats %+v, want 255 objects of %d bytes", st, want)
	}
}

// TestOwnerNotGiveable: the target role is not a member of the owner role, so it cannot give
// the object away: the data still arrives, with a warning naming the GRANT that fixes it.
func TestOwnerNotGiveable(t *testing.T) {
	f := newFixture(t)
	f.dst.Exec(t, fmt.Sprintf("REVOKE %[1]s FROM %[2]s; REVOKE %[1]s FROM %[3]s", f.own, f.wr, f.rd))
	f.src.Exec(t, fmt.Sprintf("SELECT lo_from_bytea(7400, 'kept'::bytea); ALTER LARGE OBJECT 7400 OWNER TO %s", f.own))
	sum, err := Sync(context.Background(), f.cfg())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Created != 1 || len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], fmt.Sprintf(`GRANT "%s" TO "%s"`, f.own, f.wr)) {
		t.Fatalf("summary %+v", sum)
	}
	if got := dump(t, f.dst.URL); len(got) != 1 || !strings.HasPrefix(got[0], "7400 "+f.wr+" ") {
		t.Fatalf("target holds %q", got)
	}
	f.dst.Exec(t, fmt.Sprintf("GRANT %s TO %s", f.own, f.wr))
	if sum, err = Sync(context.Background(), f.cfg()); err != nil || sum.Metadata != 1 || len(sum.Warnings) != 0 {
		t.Fatalf("after the grant: %+v, %v", sum, err)
	}
	requireSame(t, f)
}

func TestUnreadableErrorText(t *testing.T) {
	var objs []Object
	for i := uint32(1); i <= 7; i++ {
		objs = append(objs, Object{OID: 100 + i, Owner: "alice"})
	}
	e := checkReadable("bob", objs)
	var ue *UnreadableError
	if !errors.As(e, &ue) || ue.Count != 7 {
		t.Fatalf("checkReadable = %v", e)
	}
	if got, want := e.Error(), "role bob cannot read 7 large objects: 101 owned by alice, 102 owned by alice, 103 owned by alice, 104 owned by alice, 105 owned by alice, and 2 more"; got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if got := ue.Remedy(); !strings.Contains(got, "GRANT SELECT ON LARGE OBJECT 101 TO bob (and so for each)") {
		t.Fatalf("remedy %q", got)
	}
}

func TestDesiredACL(t *testing.T) {
	o := &Object{OID: 1, Owner: "ghost", ACL: []string{"a=b=SELECT", "ghost=SELECT", "ghost=UPDATE*", "public=SELECT"}}
	if got, want := strings.Join(desiredACL(o, "me"), ","), "a=b=SELECT,me=SELECT,me=UPDATE*,public=SELECT"; got != want {
		t.Fatalf("desiredACL = %q, want %q", got, want)
	}
	if g, p, opt := splitACL("a=b=UPDATE*"); g != "a=b" || p != "UPDATE" || !opt {
		t.Fatalf("splitACL = %q %q %v", g, p, opt)
	}
}
