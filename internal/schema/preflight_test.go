package schema

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestPreflight: a non-superuser target role is refused an untrusted extension, an event trigger
// and a publication of all tables, each with its remedy; a subscription is a warning; an
// extension already installed, or a trusted one (13+), passes; membership in a managed
// service's administrator role (rds_superuser) lets it create any available extension; an
// excluded object type is not checked.
func TestPreflight(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	var avail int
	conn := connectAs(t, dst.URL)
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_available_extensions WHERE name IN ('dblink', 'citext')").Scan(&avail); err != nil || avail != 2 {
		t.Skipf("dblink and citext are not both available (%d, %v)", avail, err)
	}
	role := "pf_" + strings.ToLower(dst.Name)
	if len(role) > 60 {
		role = role[:60]
	}
	dst.Exec(t, fmt.Sprintf(`CREATE ROLE %[1]q LOGIN; GRANT CREATE ON DATABASE %[2]q TO %[1]q;
DO $$ BEGIN CREATE ROLE rds_superuser; EXCEPTION WHEN duplicate_object THEN NULL; END $$;`, role, dst.Name))
	t.Cleanup(func() { dst.Exec(t, fmt.Sprintf(`DROP OWNED BY %[1]q; DROP ROLE %[1]q`, role)) })
	src.Exec(t, `CREATE EXTENSION dblink; CREATE EXTENSION citext;
CREATE FUNCTION public.f() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;
CREATE EVENT TRIGGER "audit ddl" ON ddl_command_end EXECUTE PROCEDURE public.f();
CREATE TABLE public.t (id int PRIMARY KEY);
CREATE PUBLICATION everything FOR ALL TABLES; CREATE PUBLICATION one FOR TABLE public.t;
CREATE SUBSCRIPTION feed CONNECTION 'dbname=nowhere' PUBLICATION p WITH (connect = false, slot_name = NONE);`)
	t.Cleanup(func() { src.Exec(t, `DROP SUBSCRIPTION feed`) })
	s, d := connectAs(t, src.URL), connectAs(t, dst.URLAs(role))
	run := func(exclude ...string) string {
		t.Helper()
		found, err := Preflight(context.Background(), s, d, PreflightOptions{ExcludeTypes: exclude})
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, f := range found {
			lines = append(lines, f.Severity+": "+f.String())
		}
		return strings.Join(lines, "\n")
	}

	out := run()
	want := []string{
		"error: extension dblink: only a superuser can create it (not a trusted extension); hint: have an administrator run CREATE EXTENSION dblink",
		`error: event trigger "audit ddl": only a superuser can create it, and ` + role + ` is none; hint: export PGFERRY_EXCLUDE_TYPE='EVENT TRIGGER'`,
		"error: publication everything: it publishes all tables or whole schemas",
		"warning: subscription feed: not migrated",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("preflight lacks %q:\n%s", w, out)
		}
	}
	if pgtest.Shared(t, "target").Major() >= 13 && strings.Contains(out, "citext") {
		t.Errorf("citext is trusted on 13+, yet refused:\n%s", out)
	}
	if strings.Contains(out, "publication one") {
		t.Errorf("a publication of one table needs no superuser, yet refused:\n%s", out)
	}

	out = run("EVENT TRIGGER", "publication")
	if strings.Contains(out, "event trigger") || strings.Contains(out, "publication") || !strings.Contains(out, "extension dblink") {
		t.Errorf("with EVENT TRIGGER and PUBLICATION excluded:\n%s", out)
	}

	dst.Exec(t, fmt.Sprintf(`GRANT rds_superuser TO %q`, role))
	if out = run("EVENT TRIGGER", "PUBLICATION"); strings.Contains(out, "extension") {
		t.Errorf("a member of rds_superuser may create dblink, yet refused:\n%s", out)
	}
	dst.Exec(t, fmt.Sprintf(`REVOKE rds_superuser FROM %q; CREATE EXTENSION dblink`, role))
	if out = run("EVENT TRIGGER", "PUBLICATION"); strings.Contains(out, "extension") {
		t.Errorf("dblink is installed on the target, yet refused:\n%s", out)
	}
}

func connectAs(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := dbconn.Connect(context.Background(), url, dbconn.Target, dbconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
