package schema

import (
	"regexp"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// trapSchema has every construct the grep recipe breaks, plus pgferry capture objects that
// must never reach the target.
const trapSchema = `
CREATE SCHEMA "My Schema";
CREATE TABLE "My Schema"."Order Items" (
  id int PRIMARY KEY,
  note text DEFAULT 'a;b

-- not a comment, part of the default

CREATE TRIGGER not_a_trigger',
  parent int
);
CREATE TABLE public.plain (id bigint PRIMARY KEY, item int, label text);
CREATE FUNCTION "My Schema".touch() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN

  -- a comment line inside the body; CREATE TRIGGER inside a comment
  NEW.note := E'line1\n\n-- still a string\n' || $x$ $$ nested $$ $x$;

  RETURN NEW;
END
$body$;
-- pg_get_triggerdef keeps the newlines of this literal: a multi-line CREATE TRIGGER
CREATE TRIGGER "Order Trigger"
  BEFORE INSERT OR UPDATE ON "My Schema"."Order Items"
  FOR EACH ROW WHEN (NEW.note IS DISTINCT FROM 'x

y')
  EXECUTE FUNCTION "My Schema".touch();
COMMENT ON TRIGGER "Order Trigger" ON "My Schema"."Order Items" IS 'two

lines';
COMMENT ON FUNCTION "My Schema".touch() IS 'has
--
-- Name: fake; Type: TRIGGER; Schema: public; Owner: x
--
lines';
ALTER TABLE "My Schema"."Order Items" ADD CONSTRAINT "fk parent" FOREIGN KEY (parent) REFERENCES "My Schema"."Order Items"(id);
ALTER TABLE public.plain ADD CONSTRAINT plain_item_fk FOREIGN KEY (item) REFERENCES "My Schema"."Order Items"(id);
CREATE UNIQUE INDEX "Idx; weird" ON "My Schema"."Order Items" (note);
CREATE INDEX plain_label ON public.plain (lower(label)) WHERE label <> ';';
-- a foreign key on a partitioned table cannot be added NOT VALID (before PostgreSQL 18)
CREATE TABLE public.ev (id int, at date, item int REFERENCES "My Schema"."Order Items"(id)) PARTITION BY RANGE (at);
CREATE TABLE public.ev_2024 PARTITION OF public.ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE INDEX ev_at ON public.ev (at);
-- breadth: extension, exclusion constraint, identity and generated columns, NOT VALID checks,
-- a domain with a NOT VALID check, views, a materialized view with an index, a rule, an event trigger
CREATE EXTENSION btree_gist;
CREATE DOMAIN public.posint AS int;
ALTER DOMAIN public.posint ADD CONSTRAINT posint_check CHECK (VALUE > 0) NOT VALID;
CREATE TABLE public.booking (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  room int NOT NULL,
  during tstzrange NOT NULL,
  nights public.posint,
  {{generated}}
  EXCLUDE USING gist (room WITH =, during WITH &&)
);
ALTER TABLE public.booking ADD CONSTRAINT booking_room_check CHECK (room > 0) NOT VALID;
CREATE VIEW public.booking_v AS SELECT id, room FROM public.booking WHERE room < 100;
CREATE MATERIALIZED VIEW public.booking_mv AS SELECT room, count(*) AS n FROM public.booking GROUP BY room;
CREATE UNIQUE INDEX booking_mv_room ON public.booking_mv (room);
CREATE TABLE public.booking_log (room int);
CREATE RULE booking_log_rule AS ON DELETE TO public.booking DO ALSO INSERT INTO public.booking_log VALUES (OLD.room);
CREATE FUNCTION public.ddl_note() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;
CREATE EVENT TRIGGER ddl_note ON ddl_command_end EXECUTE FUNCTION public.ddl_note();

-- pgferry's own capture objects (as pgtrig creates them) must never be copied
CREATE SCHEMA pgferry;
CREATE TABLE pgferry.capture_tables (table_name text PRIMARY KEY);
CREATE TABLE pgferry.d_1 (id bigint, txid bigint NOT NULL);
CREATE INDEX ON pgferry.d_1 (txid);
CREATE FUNCTION pgferry.f_1() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE FUNCTION pgferry.capture_truncate() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER pgferry_capture AFTER INSERT OR UPDATE OR DELETE ON public.plain FOR EACH ROW EXECUTE PROCEDURE pgferry.f_1();
CREATE TRIGGER pgferry_truncate AFTER TRUNCATE ON public.plain FOR EACH STATEMENT EXECUTE PROCEDURE pgferry.capture_truncate();
CREATE TRIGGER renamed_capture AFTER DELETE ON public.plain FOR EACH ROW EXECUTE PROCEDURE pgferry.f_1();
`

// grepRecipe is the usual shell recipe: grep -v 'CREATE TRIGGER' | grep -v '^--' | grep -v '^$'.
func grepRecipe(s string) string {
	var out []string
	for _, ln := range strings.Split(s, "\n") {
		if strings.Contains(ln, "CREATE TRIGGER") || strings.HasPrefix(ln, "--") || ln == "" {
			continue
		}
		out = append(out, ln)
	}
	return strings.Join(out, "\n")
}

// TestTrapsRoundTrip moves a schema full of grep traps section by section, in the order of a
// migration, and checks that every body, default, comment and multi-line trigger arrives
// intact and that no capture object does.
func TestTrapsRoundTrip(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	requireDumpable(t, src)
	// a generated column from PostgreSQL 12; pg_get_triggerdef spells EXECUTE PROCEDURE before 12
	generated, execute := "", "EXECUTE PROCEDURE"
	if src.Cluster.Version >= 120000 {
		generated, execute = "total numeric GENERATED ALWAYS AS (nights * 100) STORED,", "EXECUTE FUNCTION"
	}
	psql(t, src.URL, strings.Replace(trapSchema, "{{generated}}", generated, 1))

	full := pgDump(t, src.URL)
	if !regexp.MustCompile(`CREATE TRIGGER "Order Trigger" .*'x\n\ny'`).MatchString(full) {
		t.Fatalf("pg_dump did not write the multi-line trigger this test relies on:\n%s", full)
	}
	if !strings.Contains(full, `\restrict `) {
		t.Logf("this pg_dump writes no \\restrict line")
	}
	// The trap is real: the recipe mangles this dump.
	if g := grepRecipe(full); strings.Contains(g, "\n\n-- still a string") || !strings.Contains(g, execute) {
		t.Fatalf("the grep recipe unexpectedly survived this dump")
	}

	// one dump; the sections are cut from it by filter, exactly as dump would
	dumped := mustRun(t, "", "dump", "--source", src.URL, "--section", "all")
	section := func(args ...string) string {
		return mustRun(t, dumped, append([]string{"filter", "--section"}, args...)...)
	}
	pre := section("pre-data")
	for _, bad := range []string{`CREATE TRIGGER "Order`, "pgferry", "CREATE INDEX", "CREATE UNIQUE INDEX", "FOREIGN KEY"} {
		if strings.Contains(pre, bad) {
			t.Errorf("pre-data holds %q", bad)
		}
	}
	if !strings.Contains(pre, "\n\n  -- a comment line inside the body; CREATE TRIGGER inside a comment\n") {
		t.Errorf("pre-data lost the function body's blank and comment lines")
	}
	for _, sec := range []string{"indexes", "constraints", "triggers"} {
		out := section(sec)
		if strings.Contains(out, "pgferry") || strings.Contains(out, "renamed_capture") {
			t.Errorf("section %s holds capture objects:\n%s", sec, out)
		}
		if strings.Contains(full, `\restrict `) && (!strings.Contains(out, "\n\\restrict ") || !strings.Contains(out, "\n\\unrestrict ")) {
			t.Errorf("section %s lost the \\restrict/\\unrestrict lines", sec)
		}
	}

	mustRun(t, pre, "apply", "--target", dst.URL)
	idx := section("indexes")
	mustRun(t, idx, "apply", "--target", dst.URL, "-j", "3")
	fks := section("constraints", "--not-valid")
	if len(regexp.MustCompile(`FOREIGN KEY [^;]* NOT VALID;`).FindAllString(fks, -1)) != 2 || !strings.Contains(fks, "CHECK ((VALUE > 0)) NOT VALID;") || strings.Count(fks, "VALIDATE CONSTRAINT") != 2 || !strings.Contains(fks, "ALTER TABLE public.ev\n    ADD CONSTRAINT ev_item_fkey FOREIGN KEY (item) REFERENCES \"My Schema\".\"Order Items\"(id);") {
		t.Errorf("--not-valid output:\n%s", fks)
	}
	mustRun(t, fks, "apply", "--target", dst.URL, "-j", "2")
	trg := section("triggers")
	if strings.Count(trg, "CREATE TRIGGER \"Order Trigger\"") != 1 || strings.Contains(trg, "CREATE TABLE") ||
		!strings.Contains(trg, "CREATE RULE booking_log_rule") || !strings.Contains(trg, "CREATE EVENT TRIGGER ddl_note") {
		t.Errorf("triggers section:\n%s", trg)
	}
	mustRun(t, trg, "apply", "--target", dst.URL)

	out, errs, code := run(t, "", "diff", "--source", src.URL, "--target", dst.URL)
	if code != 0 {
		t.Fatalf("diff exit %d:\n%s%s", code, out, errs)
	}
	// comments are not in diff: compare them through pg_dump
	skipUndumpable(t, dst, "comparing comments through the target's pg_dump")
	_, a := dumpEntries(t, dumped)
	_, b := dumpEntries(t, pgDump(t, dst.URL))
	if strings.Join(a, "\x00") != strings.Join(b, "\x00") {
		t.Errorf("target's pg_dump differs from the source's filtered dump:\n%s\n----\n%s", strings.Join(a, ""), strings.Join(b, ""))
	}
}
