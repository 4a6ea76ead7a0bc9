package schema

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestDumpCaptureKeys: with --capture-keys, --keys primary also keeps the unique index capture
// uses as a keyless table's key and the btree index leading with a NOT NULL column of a table
// captured as whole rows; --keys secondary keeps exactly the other indexes.
func TestDumpCaptureKeys(t *testing.T) {
	src := pgtest.Source(t)
	src.Exec(t, `CREATE TABLE t (id int PRIMARY KEY, s text);
CREATE INDEX t_s ON t (s);
CREATE TABLE u (a int NOT NULL, b text);
CREATE UNIQUE INDEX u_a ON u (a);
CREATE INDEX u_b ON u (b);
CREATE TABLE w (a int NOT NULL, b text);
CREATE INDEX w_a ON w (a, b);
CREATE INDEX w_b ON w (b);
CREATE INDEX w_part ON w (a) WHERE b IS NOT NULL;`)
	_, errs, code := run(t, "", "dump", "--source", src.URL, "--section", "indexes", "--keys", "primary", "--capture-keys")
	if code != 1 || !strings.Contains(errs, "capture is not installed") || !strings.Contains(errs, "pgtrig install") {
		t.Errorf("--capture-keys without capture: exit %d, want 1 with a hint\n%s", code, errs)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, src.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := capture.Install(ctx, conn, capture.InstallOptions{Schema: "pgferry"}); err != nil {
		t.Fatal(err)
	}
	names := func(script string) []string {
		var out []string
		for _, n := range []string{"t_pkey", "t_s", "u_a", "u_b", "w_a", "w_b", "w_part"} {
			if strings.Contains(script, "INDEX "+n+" ON") || strings.Contains(script, "CONSTRAINT "+n+" ") {
				out = append(out, n)
			}
		}
		return out
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--keys", "primary", "--capture-keys"}, "t_pkey u_a w_a"},
		{[]string{"--keys", "secondary", "--capture-keys"}, "t_s u_b w_b w_part"},
		{[]string{"--keys", "primary"}, "t_pkey"},
		{[]string{"--keys", "secondary"}, "t_s u_a u_b w_a w_b w_part"},
	} {
		out := mustRun(t, "", append([]string{"dump", "--source", src.URL, "--section", "indexes"}, c.args...)...)
		if got := strings.Join(names(out), " "); got != c.want {
			t.Errorf("%v: %s, want %s", c.args, got, c.want)
		}
	}
}

// TestOwners lists the roles OWNER TO statements name for objects of a schema, once each, as
// identifiers; another schema's owners and the schema's own owner are left out.
func TestOwners(t *testing.T) {
	in := `--
-- Name: s; Type: SCHEMA; Schema: -; Owner: boss
--

CREATE SCHEMA s;
ALTER SCHEMA s OWNER TO boss;

--
-- Name: t; Type: TABLE; Schema: public; Owner: App Owner
--

CREATE TABLE public.t (id integer);
ALTER TABLE public.t OWNER TO "App Owner";

--
-- Name: f(); Type: FUNCTION; Schema: public; Owner: app
--

CREATE FUNCTION public.f() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;
ALTER FUNCTION public.f() OWNER TO app;

--
-- Name: u; Type: TABLE; Schema: public; Owner: app
--

CREATE TABLE public.u (id integer);
ALTER TABLE public.u OWNER TO app;

--
-- Name: v; Type: TABLE; Schema: s; Owner: other
--

CREATE TABLE s.v (id integer);
ALTER TABLE s.v OWNER TO other;
`
	if got, want := mustRun(t, in, "owners"), "\"App Owner\"\n\"app\"\n"; got != want {
		t.Errorf("owners:\n%s\nwant:\n%s", got, want)
	}
	if got, want := mustRun(t, in, "owners", "--object-schema", "s"), "\"other\"\n"; got != want {
		t.Errorf("owners --object-schema s:\n%s\nwant:\n%s", got, want)
	}
}

// TestFilterValidations splits a --not-valid constraints section into the part applied in the
// downtime (no VALIDATE) and the VALIDATE statements run after it, which together are the whole.
func TestFilterValidations(t *testing.T) {
	in := `SET statement_timeout = 0;

--
-- Name: c c_fk; Type: FK CONSTRAINT; Schema: public; Owner: app
--

ALTER TABLE ONLY public.c
    ADD CONSTRAINT c_fk FOREIGN KEY (p) REFERENCES public.p(id);

--
-- Name: d d_fk; Type: FK CONSTRAINT; Schema: public; Owner: app
--

ALTER TABLE ONLY public.d
    ADD CONSTRAINT d_fk FOREIGN KEY (p) REFERENCES public.p(id);
`
	all := filterOut(t, in, "--section", "constraints", "--not-valid")
	omit := filterOut(t, all, "--section", "constraints", "--validations", "omit")
	only := filterOut(t, all, "--section", "constraints", "--validations", "only")
	wantOnly := `ALTER TABLE ONLY "public"."c" VALIDATE CONSTRAINT "c_fk";` + "\n" + `ALTER TABLE ONLY "public"."d" VALIDATE CONSTRAINT "d_fk";` + "\n"
	if only != wantOnly {
		t.Errorf("--validations only:\n%s\nwant:\n%s", only, wantOnly)
	}
	if strings.Contains(omit, "VALIDATE") || strings.Count(omit, "NOT VALID;") != 2 || !strings.Contains(omit, "SET statement_timeout = 0;") {
		t.Errorf("--validations omit:\n%s", omit)
	}
	if got := filterOut(t, in, "--section", "constraints", "--not-valid", "--validations", "only"); got != wantOnly {
		t.Errorf("--not-valid --validations only from the dump:\n%s", got)
	}
	if got := filterOut(t, in, "--section", "constraints", "--validations", "only"); got != "" {
		t.Errorf("--validations only without NOT VALID keys: %q, want nothing", got)
	}
	if _, errs, code := run(t, in, "filter", "--validations", "some"); code != 2 || !strings.Contains(errs, "want include, omit or only") {
		t.Errorf("bad --validations: exit %d\n%s", code, errs)
	}
}
