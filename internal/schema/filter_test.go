package schema

import (
	"strings"
	"testing"
)

// miniDump is pg_dump output in miniature, with \restrict lines and the traps.
const miniDump = `\restrict Abc123
--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;

--
-- Name: pgferry; Type: SCHEMA; Schema: -; Owner: app
--

CREATE SCHEMA pgferry;


ALTER SCHEMA pgferry OWNER TO app;

--
-- Name: f(); Type: FUNCTION; Schema: public; Owner: app
--

CREATE FUNCTION public.f() RETURNS trigger
    LANGUAGE plpgsql
    AS $_$
BEGIN

--
-- Name: t trg; Type: TRIGGER; Schema: public; Owner: app
--

  RETURN NEW; -- ';'
END
$_$;


ALTER FUNCTION public.f() OWNER TO app;

--
-- Name: f_1(); Type: FUNCTION; Schema: pgferry; Owner: app
--

CREATE FUNCTION pgferry.f_1() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;

SET default_tablespace = '';

--
-- Name: t; Type: TABLE; Schema: public; Owner: app
--

CREATE TABLE public.t (
    id integer NOT NULL,
    p integer,
    s text DEFAULT 'x

y'::text
);


ALTER TABLE public.t OWNER TO app;

--
-- Name: TABLE t; Type: COMMENT; Schema: public; Owner: app
--

COMMENT ON TABLE public.t IS 'a
-- Name: x; Type: TRIGGER; Schema: public; Owner: app
b';

--
-- Name: u; Type: TABLE; Schema: other; Owner: app
--

CREATE TABLE other.u (id integer);

--
-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: app
--

ALTER TABLE ONLY public.t
    ADD CONSTRAINT t_pkey PRIMARY KEY (id);


--
-- Name: t_s; Type: INDEX; Schema: public; Owner: app
--

CREATE INDEX t_s ON public.t USING btree (s);


--
-- Name: INDEX t_s; Type: COMMENT; Schema: public; Owner: app
--

COMMENT ON INDEX public.t_s IS 'c';


--
-- Name: t trg; Type: TRIGGER; Schema: public; Owner: app
--

CREATE TRIGGER trg BEFORE INSERT ON public.t FOR EACH ROW WHEN ((new.s <> 'a

b'::text)) EXECUTE FUNCTION public.f();


--
-- Name: t pgferry_capture; Type: TRIGGER; Schema: public; Owner: app
--

CREATE TRIGGER pgferry_capture AFTER INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION pgferry.f_1();


--
-- Name: t other_capture; Type: TRIGGER; Schema: public; Owner: app
--

CREATE TRIGGER other_capture AFTER DELETE ON public.t FOR EACH ROW EXECUTE FUNCTION pgferry.f_1();


--
-- Name: t t_p_fkey; Type: FK CONSTRAINT; Schema: public; Owner: app
--

ALTER TABLE ONLY public.t
    ADD CONSTRAINT t_p_fkey FOREIGN KEY (p) REFERENCES public.t(id);


--
-- Name: TABLE t; Type: ACL; Schema: public; Owner: app
--

GRANT SELECT ON TABLE public.t TO reader;


--
-- PostgreSQL database dump complete
--

\unrestrict Abc123

`

func filterOut(t *testing.T, in string, args ...string) string {
	t.Helper()
	return mustRun(t, in, append([]string{"filter"}, args...)...)
}

func TestFilterSections(t *testing.T) {
	all := filterOut(t, miniDump)
	if strings.Contains(all, "pgferry") || strings.Contains(all, "other_capture") {
		t.Errorf("capture objects kept:\n%s", all)
	}
	for _, want := range []string{"CREATE TRIGGER trg", "'a\n\nb'::text", "RETURN NEW; -- ';'\nEND\n$_$;", "\\restrict Abc123\n", "\\unrestrict Abc123\n"} {
		if !strings.Contains(all, want) {
			t.Errorf("all lacks %q", want)
		}
	}
	cases := []struct {
		section   string
		want, not []string
	}{
		{"pre-data", []string{"CREATE FUNCTION public.f()", "\n\n--\n-- Name: t trg; Type: TRIGGER; Schema: public; Owner: app\n--\n\n  RETURN NEW;", "CREATE TABLE public.t", "COMMENT ON TABLE", "GRANT SELECT", "SET default_tablespace = '';", "SET statement_timeout = 0;", "\\restrict Abc123", "\\unrestrict Abc123"},
			[]string{"CREATE TRIGGER", "t_pkey", "CREATE INDEX", "FOREIGN KEY", "COMMENT ON INDEX"}},
		{"indexes", []string{"ADD CONSTRAINT t_pkey PRIMARY KEY", "CREATE INDEX t_s", "COMMENT ON INDEX public.t_s", "SET default_tablespace = '';", "set_config('search_path', '', false)", "\\restrict Abc123"},
			[]string{"CREATE TABLE", "CREATE TRIGGER", "FOREIGN KEY", "CREATE FUNCTION"}},
		{"constraints", []string{"FOREIGN KEY (p) REFERENCES public.t(id);"}, []string{"PRIMARY KEY", "CREATE TRIGGER", "CREATE TABLE", "VALIDATE"}},
		{"triggers", []string{"CREATE TRIGGER trg BEFORE INSERT ON public.t FOR EACH ROW WHEN ((new.s <> 'a\n\nb'::text)) EXECUTE FUNCTION public.f();"}, []string{"CREATE TABLE", "pgferry", "other_capture", "PRIMARY KEY"}},
		{"post-data", []string{"CREATE TRIGGER trg", "t_pkey", "FOREIGN KEY", "CREATE INDEX"}, []string{"CREATE TABLE", "CREATE FUNCTION"}},
	}
	for _, c := range cases {
		out := filterOut(t, miniDump, "--section", c.section)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("section %s lacks %q:\n%s", c.section, w, out)
			}
		}
		for _, n := range c.not {
			if strings.Contains(out, n) {
				t.Errorf("section %s holds %q:\n%s", c.section, n, out)
			}
		}
	}
}

func TestFilterNotValid(t *testing.T) {
	out := filterOut(t, miniDump, "--section", "constraints", "--not-valid")
	if !strings.Contains(out, "ADD CONSTRAINT t_p_fkey FOREIGN KEY (p) REFERENCES public.t(id) NOT VALID;") {
		t.Errorf("no NOT VALID:\n%s", out)
	}
	add := strings.Index(out, "NOT VALID;")
	val := strings.Index(out, `ALTER TABLE ONLY "public"."t" VALIDATE CONSTRAINT "t_p_fkey";`)
	unr := strings.Index(out, `\unrestrict`)
	if add < 0 || val < add || unr < val {
		t.Errorf("want ADD ... NOT VALID, then VALIDATE, then \\unrestrict:\n%s", out)
	}
	// a key on a partitioned table (no ONLY) cannot be NOT VALID: kept valid, with a note
	part := strings.Replace(miniDump, "ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_p_fkey", "ALTER TABLE public.t\n    ADD CONSTRAINT t_p_fkey", 1)
	out, errs, code := run(t, part, "filter", "--section", "constraints", "--not-valid")
	if code != 0 || strings.Contains(out, "NOT VALID") || strings.Contains(out, "VALIDATE") || !strings.Contains(errs, "added valid") {
		t.Errorf("partitioned: exit %d\n%s\n%s", code, out, errs)
	}
}

func TestFilterOptions(t *testing.T) {
	out := filterOut(t, miniDump, "--no-owner", "--no-acl", "--no-comments")
	for _, n := range []string{"OWNER TO", "GRANT", "COMMENT ON"} {
		if strings.Contains(out, n) {
			t.Errorf("holds %q:\n%s", n, out)
		}
	}
	out = filterOut(t, miniDump, "--exclude-type", "trigger", "--exclude-type", "FK CONSTRAINT")
	if strings.Contains(out, "CREATE TRIGGER") || strings.Contains(out, "FOREIGN KEY") || !strings.Contains(out, "CREATE INDEX") {
		t.Errorf("--exclude-type:\n%s", out)
	}
	out = filterOut(t, miniDump, "--exclude-table", "t")
	for _, n := range []string{"CREATE TABLE public.t", "t_pkey", "CREATE INDEX", "COMMENT ON INDEX", "CREATE TRIGGER", "FOREIGN KEY", "GRANT", "COMMENT ON TABLE"} {
		if strings.Contains(out, n) {
			t.Errorf("--exclude-table t holds %q", n)
		}
	}
	if !strings.Contains(out, "CREATE TABLE other.u") || !strings.Contains(out, "CREATE FUNCTION public.f()") {
		t.Errorf("--exclude-table t dropped too much:\n%s", out)
	}
	out = filterOut(t, miniDump, "--exclude-schema", "other")
	if strings.Contains(out, "other.u") || !strings.Contains(out, "CREATE TABLE public.t") {
		t.Errorf("--exclude-schema:\n%s", out)
	}
	out = filterOut(t, miniDump, "--capture-schema", "mig")
	if !strings.Contains(out, "CREATE SCHEMA pgferry") || strings.Contains(out, "pgferry_capture") {
		t.Errorf("--capture-schema mig: schema pgferry should be kept, pgferry_* triggers dropped:\n%s", out)
	}
}

func TestFilterAllIsIdentity(t *testing.T) {
	pagila := readPagila(t)
	if out := filterOut(t, pagila); out != pagila {
		t.Fatal("filter --section all changed the pagila dump")
	}
	counts := map[string]int{}
	for _, s := range []string{"pre-data", "indexes", "constraints", "triggers", "post-data"} {
		counts[s] = strings.Count(filterOut(t, pagila, "--section", s), "\n-- Name: ")
	}
	// pagila: 34 indexes + 14 primary keys; 36 foreign keys; 15 triggers; 260 entries in all
	if counts["indexes"] != 48 || counts["constraints"] != 36 || counts["triggers"] != 15 || counts["pre-data"]+counts["post-data"] != 260 || counts["post-data"] != 99 {
		t.Errorf("entry counts %v", counts)
	}
}

func TestFilterBadInput(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", []string{"line 1", "empty"}},
		{"blank", "\n\n  \n", []string{"line 1", "empty"}},
		{"comments only", "-- nothing\n", []string{"no SQL statements"}},
		{"unterminated dollar quote", "SET a = 1;\nCREATE FUNCTION f() RETURNS int\n    AS $_$\nSELECT 1;\n", []string{"line 3", "unterminated dollar-quoted string", "$_$"}},
		{"unterminated string", "SET a = 1;\n\nCOMMENT ON TABLE t IS 'abc;\n", []string{"line 3", "unterminated string literal"}},
		{"binary", "PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", []string{"line 1", "binary"}},
		{"binary later", strings.Repeat("SELECT 1;\n", 5) + "\x00\x01", []string{"line 6", "NUL byte"}},
		{"custom format", "PGDMP\x01\x0e\x00", []string{"custom or tar archive", "pg_restore"}},
		{"truncated", "SET a = 1;\nCREATE TABLE t (\n  id int", []string{"line 2", "no terminating ';'"}},
		{"header mismatch", "--\n-- Name: t; Type: TABLE; Schema: public; Owner: a\n--\n\nCREATE TABLE t (id int);\nCREATE TRIGGER x AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();\n", []string{"line 6", "header at line 2", "is a TABLE", "trigger"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errs, code := run(t, c.in, "filter")
			if code == 0 || out != "" {
				t.Fatalf("exit %d, stdout %q", code, out)
			}
			for _, w := range c.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q: %s", w, errs)
				}
			}
			if !strings.HasPrefix(errs, "pgschema: ") || !strings.Contains(errs, "hint: ") {
				t.Errorf("stderr: %s", errs)
			}
			// apply refuses the same input before touching any database
			_, aerrs, acode := run(t, c.in, "apply", "--target", "postgres://nobody@127.0.0.1:1/none", "--dry-run")
			if acode == 0 && c.name != "header mismatch" {
				t.Errorf("apply accepted it: %s", aerrs)
			}
		})
	}
}

func TestHeaderlessStatements(t *testing.T) {
	in := "CREATE TABLE a (id int PRIMARY KEY, b int);\nCREATE INDEX a_b ON a (b);\nCREATE TRIGGER x\n  AFTER INSERT ON a\n  FOR EACH ROW EXECUTE FUNCTION f();\nALTER TABLE a ADD CONSTRAINT fk FOREIGN KEY (b) REFERENCES a(id);\nCREATE TRIGGER pgferry_capture AFTER INSERT ON a FOR EACH ROW EXECUTE FUNCTION pgferry.f_1();\n"
	if out := filterOut(t, in, "--section", "pre-data"); out != "CREATE TABLE a (id int PRIMARY KEY, b int);\n" {
		t.Errorf("pre-data: %q", out)
	}
	if out := filterOut(t, in, "--section", "triggers"); out != "CREATE TRIGGER x\n  AFTER INSERT ON a\n  FOR EACH ROW EXECUTE FUNCTION f();\n" {
		t.Errorf("triggers: %q", out)
	}
	if out := filterOut(t, in, "--section", "indexes"); out != "CREATE INDEX a_b ON a (b);\n" {
		t.Errorf("indexes: %q", out)
	}
}

func TestApplyPlan(t *testing.T) {
	in := `SET x = 1;
CREATE TABLE a (id int);
CREATE INDEX a1 ON public.a (id);
CREATE INDEX b1 ON ONLY public.b (id);
CREATE INDEX b_p1_id ON public.b_p1 (id);
ALTER TABLE ONLY public.c ADD CONSTRAINT c_pkey PRIMARY KEY (id);
ALTER INDEX public.b1 ATTACH PARTITION public.b_p1_id;
ALTER TABLE ONLY public.d ADD CONSTRAINT d_fk FOREIGN KEY (c) REFERENCES public.c(id);
DO $$BEGIN END$$;
\unrestrict k
`
	out := mustRun(t, in, "apply", "--dry-run")
	want := []string{
		"line 1\tset\tsetting, on every connection",
		"line 2\tcreate table\talone",
		"line 3\tindex\tparallel on public.a",
		"line 4\tindex\tparallel on public.b",
		"line 5\tindex\tparallel on public.b_p1",
		"line 6\tindex constraint\tparallel on public.c",
		"line 7\tindex attach\tparallel on public.b, public.b_p1",
		"line 8\tforeign key\tparallel on public.d, public.c",
		"line 9\tother\talone",
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("plan:\n%s", out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("plan line %d: %q, want prefix %q", i, lines[i], w)
		}
	}
	_, errs, code := run(t, "\\connect other\nSELECT 1;\n", "apply", "--dry-run")
	if code != 1 || !strings.Contains(errs, `line 1: psql meta-command "\\connect other" cannot be applied`) {
		t.Errorf("\\connect: exit %d: %s", code, errs)
	}
}

// partDump has a partitioned table whose partitions pg_dump creates as tables and attaches,
// a serial sequence owned by a table, and data entries.
const partDump = `SET statement_timeout = 0;

--
-- Name: ev; Type: TABLE; Schema: public; Owner: app
--

CREATE TABLE public.ev (id integer NOT NULL, at date) PARTITION BY RANGE (at);

--
-- Name: ev_2024; Type: TABLE; Schema: public; Owner: app
--

CREATE TABLE public.ev_2024 (id integer NOT NULL, at date);

--
-- Name: keep; Type: TABLE; Schema: public; Owner: app
--

CREATE TABLE public.keep (id integer NOT NULL);

--
-- Name: ev_id_seq; Type: SEQUENCE; Schema: public; Owner: app
--

CREATE SEQUENCE public.ev_id_seq AS integer;

--
-- Name: ev_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: app
--

ALTER SEQUENCE public.ev_id_seq OWNED BY public.ev.id;

--
-- Name: ev_2024; Type: TABLE ATTACH; Schema: public; Owner: app
--

ALTER TABLE ONLY public.ev ATTACH PARTITION public.ev_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');

--
-- Data for Name: keep; Type: TABLE DATA; Schema: public; Owner: app
--

COPY public.keep (id) FROM stdin;
1
\.


--
-- Name: ev_2024 ev_2024_pkey; Type: CONSTRAINT; Schema: public; Owner: app
--

ALTER TABLE ONLY public.ev_2024
    ADD CONSTRAINT ev_2024_pkey PRIMARY KEY (id, at);

`

func TestFilterPartitionsAndData(t *testing.T) {
	out := filterOut(t, partDump, "--exclude-table", "ev")
	for _, n := range []string{"ev_2024", "ev_id_seq OWNED BY", "ATTACH PARTITION", "CREATE TABLE public.ev "} {
		if strings.Contains(out, n) {
			t.Errorf("--exclude-table ev holds %q:\n%s", n, out)
		}
	}
	if !strings.Contains(out, "CREATE TABLE public.keep") || !strings.Contains(out, "COPY public.keep") {
		t.Errorf("--exclude-table ev dropped too much:\n%s", out)
	}
	out = filterOut(t, partDump, "--table", "ev")
	if !strings.Contains(out, "CREATE TABLE public.ev_2024") || !strings.Contains(out, "ev_2024_pkey") || strings.Contains(out, "keep") {
		t.Errorf("--table ev:\n%s", out)
	}
	// a partition named by --table selects its partitioned table, whole
	if out := filterOut(t, partDump, "--table", "EV_2024"); !strings.Contains(out, "CREATE TABLE public.ev ") || !strings.Contains(out, "ATTACH PARTITION") || strings.Contains(out, "keep") {
		t.Errorf("--table EV_2024:\n%s", out)
	}
	for _, args := range [][]string{{"--exclude-table", "ev_2024"}, {"--table", "nothing"}, {"--table", `"EV"`}} {
		out, errs, code := run(t, partDump, append([]string{"filter"}, args...)...)
		if code != 1 || out != "" || !strings.Contains(errs, "no table matches -t") && !strings.Contains(errs, "partition public.ev_2024 but not its partitioned table public.ev") {
			t.Errorf("filter %v: exit %d, stdout %q, stderr %s", args, code, out, errs)
		}
	}
	for _, sec := range []string{"pre-data", "post-data"} {
		if out := filterOut(t, partDump, "--section", sec); strings.Contains(out, "COPY") {
			t.Errorf("section %s holds table data", sec)
		}
	}
	if out := filterOut(t, partDump); out != partDump {
		t.Errorf("all is not the identity:\n%s", out)
	}
}

func TestApplySerialWithTransactions(t *testing.T) {
	in := "BEGIN;\nCREATE INDEX a ON public.t (x);\nCREATE INDEX b ON public.u (x);\nCOMMIT;\n"
	out := mustRun(t, in, "apply", "--dry-run", "-j", "4")
	if strings.Contains(out, "parallel") || strings.Count(out, "alone") != 4 {
		t.Errorf("plan:\n%s", out)
	}
}

func TestFilterKeys(t *testing.T) {
	prim := filterOut(t, miniDump, "--section", "indexes", "--keys", "primary")
	sec := filterOut(t, miniDump, "--section", "indexes", "--keys", "secondary")
	if !strings.Contains(prim, "t_pkey PRIMARY KEY") || strings.Contains(prim, "t_s") {
		t.Errorf("--keys primary:\n%s", prim)
	}
	if strings.Contains(sec, "t_pkey") || !strings.Contains(sec, "CREATE INDEX t_s") || !strings.Contains(sec, "COMMENT ON INDEX public.t_s") {
		t.Errorf("--keys secondary:\n%s", sec)
	}
	if all := filterOut(t, miniDump, "--keys", "primary"); !strings.Contains(all, "CREATE TABLE public.t") || !strings.Contains(all, "CREATE TRIGGER trg") {
		t.Errorf("--keys must only narrow the indexes section:\n%s", all)
	}
	pagila := readPagila(t)
	p := strings.Count(filterOut(t, pagila, "--section", "indexes", "--keys", "primary"), "\n-- Name: ")
	s := strings.Count(filterOut(t, pagila, "--section", "indexes", "--keys", "secondary"), "\n-- Name: ")
	if p != 14 || s != 34 {
		t.Errorf("pagila: %d primary, %d secondary entries, want 14 and 34", p, s)
	}
}

// TestRealDumpShapes: shapes pg_dump 15 prints for real schemas, classified the way pg_dump
// restores them: a partition's cloned trigger whose state differs from its parent's (a TRIGGER
// entry holding only ALTER TABLE ... ENABLE TRIGGER; pgferry's own is dropped), and a view that
// needs another object's key, completed by CREATE OR REPLACE VIEW under a RULE header (kept in
// post-data with a warning).
func TestRealDumpShapes(t *testing.T) {
	in := `--
-- Name: v; Type: VIEW; Schema: public; Owner: a
--

CREATE VIEW public.v AS
 SELECT NULL::integer AS id;

--
-- Name: p_2024 pgferry_capture; Type: TRIGGER; Schema: public; Owner: a
--

ALTER TABLE public.p_2024 ENABLE TRIGGER pgferry_capture;

--
-- Name: p_2024 audit; Type: TRIGGER; Schema: public; Owner: a
--

ALTER TABLE public.p_2024 DISABLE TRIGGER audit;

--
-- Name: v _RETURN; Type: RULE; Schema: public; Owner: a
--

CREATE OR REPLACE VIEW public.v AS
 SELECT t.id FROM public.t GROUP BY t.id;
`
	out, errs, code := run(t, in, "filter", "--section", "post-data")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.Contains(out, "pgferry_capture") {
		t.Errorf("pgferry's trigger state kept:\n%s", out)
	}
	for _, want := range []string{"ALTER TABLE public.p_2024 DISABLE TRIGGER audit;", "CREATE OR REPLACE VIEW public.v AS"} {
		if !strings.Contains(out, want) {
			t.Errorf("post-data lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "warning: line 24") || !strings.Contains(errs, "RULE") {
		t.Errorf("no warning for the RULE holding a view: %q", errs)
	}
	pre := filterOut(t, in, "--section", "pre-data")
	if strings.Contains(pre, "OR REPLACE") || strings.Contains(pre, "TRIGGER") {
		t.Errorf("pre-data holds post-data statements:\n%s", pre)
	}
}
