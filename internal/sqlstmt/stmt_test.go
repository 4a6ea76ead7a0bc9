package sqlstmt

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		sql                   string
		kind                  Kind
		name, schema, table   string
		refSchema, refTable   string
		only, primary         bool
		parentSchema, parentT string
	}{
		{sql: `CREATE UNIQUE INDEX "Idx; weird" ON "My Schema"."Order Items" USING btree (note);`, kind: KIndex, name: "Idx; weird", schema: "My Schema", table: "Order Items"},
		{sql: `CREATE INDEX p_id ON ONLY public.p USING btree (id);`, kind: KIndex, name: "p_id", schema: "public", table: "p", only: true},
		{sql: "ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);", kind: KIndexConstraint, name: "t_pkey", schema: "public", table: "t", only: true, primary: true},
		{sql: `ALTER TABLE ONLY "S"."T" ADD CONSTRAINT "fk x" FOREIGN KEY (a) REFERENCES "R"."Q"(id) ON DELETE CASCADE;`, kind: KForeignKey, name: "fk x", schema: "S", table: "T", refSchema: "R", refTable: "Q", only: true},
		{sql: `ALTER TABLE public.p ADD CONSTRAINT p_fk FOREIGN KEY (a) REFERENCES public.q(id);`, kind: KForeignKey, name: "p_fk", schema: "public", table: "p", refSchema: "public", refTable: "q"},
		{sql: `ALTER TABLE ONLY public.t ADD CONSTRAINT c EXCLUDE USING gist (r WITH &&);`, kind: KIndexConstraint, name: "c", schema: "public", table: "t", only: true},
		{sql: `ALTER TABLE public.t VALIDATE CONSTRAINT c;`, kind: KValidate, name: "c", schema: "public", table: "t"},
		{sql: `ALTER INDEX public.p_id ATTACH PARTITION public.p1_id;`, kind: KIndexAttach, name: "p_id", schema: "public"},
		{sql: "CREATE TRIGGER \"T 1\" BEFORE INSERT ON public.t FOR EACH ROW WHEN ((new.a <> 'x\n\ny'::text)) EXECUTE FUNCTION pgferry.f_1();", kind: KTrigger, name: "T 1", schema: "public", table: "t"},
		{sql: `CREATE CONSTRAINT TRIGGER ct AFTER INSERT ON s.t DEFERRABLE FOR EACH ROW EXECUTE PROCEDURE s.f();`, kind: KTrigger, name: "ct", schema: "s", table: "t"},
		{sql: `CREATE RULE "_RETURN" AS ON SELECT TO public.v DO INSTEAD SELECT 1;`, kind: KRule, name: "_RETURN", schema: "public", table: "v"},
		{sql: `CREATE EVENT TRIGGER e ON ddl_command_end EXECUTE FUNCTION public.f();`, kind: KEventTrigger, name: "e"},
		{sql: `ALTER TABLE public.t OWNER TO "App Owner";`, kind: KOwner, schema: "public", table: "t"},
		{sql: `ALTER FUNCTION public.f() OWNER TO app;`, kind: KOwner},
		{sql: `ALTER SEQUENCE public.s OWNED BY public.t.id;`, kind: KSequenceOwned, schema: "public", table: "t"},
		{sql: `ALTER TABLE ONLY public.ev ATTACH PARTITION public.ev_2024 FOR VALUES FROM (1) TO (2);`, kind: KAlterTable, schema: "public", table: "ev_2024", only: true, parentSchema: "public", parentT: "ev"},
		{sql: `CREATE TABLE public.c PARTITION OF public.p FOR VALUES IN (1);`, kind: KCreateTable, schema: "public", table: "c", parentSchema: "public", parentT: "p"},
		{sql: `SELECT pg_catalog.set_config('search_path', '', false);`, kind: KSet},
		{sql: `SET default_tablespace = '';`, kind: KSet},
		{sql: `SELECT pg_catalog.setval('public.s', 1, false);`, kind: KOther},
		{sql: `GRANT SELECT ON TABLE public.t TO r;`, kind: KACL},
		{sql: `BEGIN;`, kind: KTxn},
		{sql: `CREATE POLICY "p 1" ON "S"."T" FOR SELECT USING ((tenant = 1));`, kind: KPolicy, name: "p 1", schema: "S", table: "T"},
		{sql: `ALTER TABLE public.t ENABLE ROW LEVEL SECURITY;`, kind: KRowSecurity, schema: "public", table: "t"},
		{sql: `ALTER TABLE ONLY public.t FORCE ROW LEVEL SECURITY;`, kind: KAlterTable, schema: "public", table: "t", only: true},
		{sql: `REFRESH MATERIALIZED VIEW CONCURRENTLY "S"."M v";`, kind: KRefresh, schema: "S", table: "M v"},
		{sql: `CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;`, kind: KOther},
	}
	for _, c := range cases {
		st := Parse(c.sql)
		if st.Kind != c.kind || st.Name != c.name || st.Table.Schema != c.schema || st.Table.Name != c.table ||
			st.RefTable.Schema != c.refSchema || st.RefTable.Name != c.refTable || st.Only != c.only || st.Primary != c.primary ||
			st.Parent.Schema != c.parentSchema || st.Parent.Name != c.parentT {
			t.Errorf("%s\n got %+v", c.sql, st)
		}
	}
}

// TestParseIndexPlainKey: which unique indexes allow REFRESH MATERIALIZED VIEW CONCURRENTLY.
func TestParseIndexPlainKey(t *testing.T) {
	for sql, want := range map[string][2]bool{
		`CREATE UNIQUE INDEX i ON public.m USING btree (a, "B c" DESC NULLS LAST) INCLUDE (d) WITH (fillfactor='70');`: {true, true},
		`CREATE UNIQUE INDEX i ON public.m (a COLLATE "C" text_pattern_ops);`:                                          {true, true},
		`CREATE UNIQUE INDEX i ON public.m USING btree (lower(a));`:                                                    {true, false},
		`CREATE UNIQUE INDEX i ON public.m USING btree (((a + b)));`:                                                   {true, false},
		`CREATE UNIQUE INDEX i ON public.m USING btree (a) WHERE (a > 0);`:                                             {true, false},
		`CREATE INDEX i ON public.m USING btree (a);`:                                                                  {false, true},
	} {
		if st := Parse(sql); st.Kind != KIndex || st.Unique != want[0] || st.PlainKey != want[1] {
			t.Errorf("%s: got kind %s unique %v plain %v, want unique %v plain %v", sql, st.Kind, st.Unique, st.PlainKey, want[0], want[1])
		}
	}
}

// TestParseOwner checks that ALTER ... OWNER TO carries its role, unquoted, for every object kind.
func TestParseOwner(t *testing.T) {
	for sql, want := range map[string]string{
		`ALTER TABLE public.t OWNER TO "App Owner";`:        "App Owner",
		`ALTER FUNCTION public.f(a integer) OWNER TO App;`:  "app",
		`ALTER INDEX public.i OWNER TO app_ix;`:             "app_ix",
		`ALTER SEQUENCE public.s OWNER TO "s""q";`:          `s"q`,
		`ALTER TYPE public.mood OWNER TO app;`:              "app",
		`ALTER FOREIGN TABLE public.ft OWNER TO "Remote";`:  "Remote",
		`ALTER TABLE public.t ALTER COLUMN owner TYPE int;`: "",
	} {
		st := Parse(sql)
		if st.Owner != want || (want != "") != (st.Kind == KOwner) {
			t.Errorf("%s: kind %s owner %q, want owner %q", sql, st.Kind, st.Owner, want)
		}
	}
}

// TestParseKeyColumns checks the key columns read from unique indexes and key constraints as
// pg_dump writes them: options after a column are not columns, an expression gives none.
func TestParseKeyColumns(t *testing.T) {
	for sql, want := range map[string]string{
		`CREATE UNIQUE INDEX i ON public.m USING btree (a, "B c" DESC NULLS LAST) INCLUDE (d) WITH (fillfactor='70');`: `a|B c`,
		`CREATE UNIQUE INDEX i ON ONLY public.m USING btree (a COLLATE "C" text_pattern_ops);`:                         `a`,
		`CREATE UNIQUE INDEX i ON public.m USING btree (lower(a));`:                                                    ``,
		`CREATE UNIQUE INDEX i ON public.m USING btree (((a + b)));`:                                                   ``,
		`CREATE UNIQUE INDEX i ON public.m (id) WHERE (a > 0);`:                                                        `id`,
		`ALTER TABLE ONLY public.m ADD CONSTRAINT m_pkey PRIMARY KEY (id, "Part");`:                                    `id|Part`,
		`ALTER TABLE ONLY public.m ADD CONSTRAINT m_u UNIQUE NULLS NOT DISTINCT (email) INCLUDE (x);`:                  `email`,
		`ALTER TABLE ONLY public.m ADD CONSTRAINT m_u UNIQUE (email) DEFERRABLE;`:                                      `email`,
		`ALTER TABLE ONLY public.m ADD CONSTRAINT m_x EXCLUDE USING gist (r WITH &&);`:                                 ``,
	} {
		st := Parse(sql)
		if got := strings.Join(st.Columns, "|"); st.Kind != KIndex && st.Kind != KIndexConstraint || got != want {
			t.Errorf("%s: got kind %s columns %q, want %q", sql, st.Kind, got, want)
		}
	}
}
