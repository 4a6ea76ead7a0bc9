package sqllex

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// stmts returns the statement pieces' text, trimmed.
func stmts(t *testing.T, src string) []string {
	t.Helper()
	pieces, err := Split(src)
	if err != nil {
		t.Fatalf("split: %v", err)
	}
	if got := Join(pieces); got != src {
		t.Fatalf("join != input:\n%q\n%q", got, src)
	}
	var out []string
	for _, p := range pieces {
		switch p.Kind {
		case Statement:
			out = append(out, p.Text)
		case Meta:
			out = append(out, "META "+p.Text)
		case CopyData:
			out = append(out, "DATA "+p.Text)
		}
	}
	return out
}

func TestSplitTraps(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"simple", "SELECT 1;\nSELECT 2;\n", []string{"SELECT 1;", "SELECT 2;"}},
		{"semicolon in string", "SELECT 'a;b';SELECT 2;", []string{"SELECT 'a;b';", "SELECT 2;"}},
		{"doubled quote", "SELECT 'it''s;';x;", []string{"SELECT 'it''s;';", "x;"}},
		{"E string backslash quote", `SELECT E'a\';b';y;`, []string{`SELECT E'a\';b';`, "y;"}},
		{"standard string backslash", `SELECT 'a\';b;'x';`, []string{`SELECT 'a\';`, "b;", "'x';"}},
		{"quoted identifier", `CREATE TABLE "a;""b" (x int);q;`, []string{`CREATE TABLE "a;""b" (x int);`, "q;"}},
		{"dollar tag", "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $x$ ; $body$ LANGUAGE sql;\nz;", []string{"CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $x$ ; $body$ LANGUAGE sql;", "z;"}},
		{"empty dollar tag", "DO $$BEGIN\n\n-- x;\nEND$$;\nz;", []string{"DO $$BEGIN\n\n-- x;\nEND$$;", "z;"}},
		{"identifier with dollar", "SELECT a$b$ FROM t;z;", []string{"SELECT a$b$ FROM t;", "z;"}},
		{"param", "PREPARE p AS SELECT $1;z;", []string{"PREPARE p AS SELECT $1;", "z;"}},
		{"nested block comment", "SELECT /* a /* b; */ c; */ 1;z;", []string{"SELECT /* a /* b; */ c; */ 1;", "z;"}},
		{"line comment", "SELECT 1 -- ; not here\n;z;", []string{"SELECT 1 -- ; not here\n;", "z;"}},
		{"parens", "CREATE RULE r AS ON INSERT TO t DO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));z;", []string{"CREATE RULE r AS ON INSERT TO t DO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));", "z;"}},
		{"begin atomic", "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;\nz;", []string{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;", "z;"}},
		{"or replace procedure", "CREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END;z;", []string{"CREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END;", "z;"}},
		{"begin transaction", "BEGIN;SELECT 1;END;", []string{"BEGIN;", "SELECT 1;", "END;"}},
		{"restrict", "\\restrict abc123\nSET x = 1;\n\\unrestrict abc123\n", []string{"META \\restrict abc123\n", "SET x = 1;", "META \\unrestrict abc123\n"}},
		{"connect", "\\connect -reuse-previous=on \"dbname='x'\"\nSELECT 1;", []string{"META \\connect -reuse-previous=on \"dbname='x'\"\n", "SELECT 1;"}},
		{"meta at end without newline", "SELECT 1;\n\\unrestrict k", []string{"SELECT 1;", "META \\unrestrict k"}},
		{"copy data", "COPY t (a) FROM stdin;\n1\n2;3\n\\.\nSELECT 1;", []string{"COPY t (a) FROM stdin;", "DATA 1\n2;3\n\\.\n", "SELECT 1;"}},
		{"multi-line trigger", "CREATE TRIGGER t\n    AFTER INSERT ON x\n    FOR EACH ROW EXECUTE FUNCTION f();\n", []string{"CREATE TRIGGER t\n    AFTER INSERT ON x\n    FOR EACH ROW EXECUTE FUNCTION f();"}},
		{"blank lines in string", "INSERT INTO t VALUES ('a\n\n-- not a comment\n\nb');z;", []string{"INSERT INTO t VALUES ('a\n\n-- not a comment\n\nb');", "z;"}},
		{"unicode string", `SELECT U&'d\0061t\+000061';z;`, []string{`SELECT U&'d\0061t\+000061';`, "z;"}},
		{"unterminated final statement", "SELECT 1;\nSELECT 2", []string{"SELECT 1;", "SELECT 2"}},
		{"scs off", "SET standard_conforming_strings = off;\nSELECT 'a\\';b';z;", []string{"SET standard_conforming_strings = off;", "SELECT 'a\\';b';", "z;"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := stmts(t, c.src)
			if strings.Join(got, "\x00") != strings.Join(c.want, "\x00") {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestSplitLines(t *testing.T) {
	src := "-- c\n\nSELECT 1;\n\n\nSELECT\n2;\n\\x\nSELECT 3;"
	pieces, err := Split(src)
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, p := range pieces {
		if p.Kind != Space {
			lines = append(lines, p.Line)
		}
	}
	want := []int{3, 6, 8, 9}
	if len(lines) != len(want) {
		t.Fatalf("got lines %v, want %v", lines, want)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Fatalf("got lines %v, want %v", lines, want)
		}
	}
}

func TestSplitErrors(t *testing.T) {
	cases := []struct {
		name, src string
		line      int
		msg       string
	}{
		{"unterminated dollar", "SELECT 1;\n\nCREATE FUNCTION f() AS $body$\nSELECT 1;\n", 3, "unterminated dollar-quoted string: no closing $body$"},
		{"unterminated string", "SELECT 1;\nSELECT 'abc\n\n", 2, "unterminated string literal"},
		{"unterminated E string", "SELECT E'abc\\'", 1, "unterminated escape string literal"},
		{"unterminated identifier", "\n\nSELECT \"abc", 3, "unterminated quoted identifier"},
		{"unterminated comment", "SELECT 1;\n/* a /* b */\n", 2, "unterminated /* comment"},
		{"nul", "SELECT 1;\nSELECT 2;\n\x00\x01\x02", 3, "NUL byte"},
		{"copy without end", "COPY t FROM stdin;\n1\n2\n", 2, `COPY data without its terminating \. line`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pieces, err := Split(c.src)
			var le *Error
			if !errors.As(err, &le) {
				t.Fatalf("want *Error, got %v", err)
			}
			if le.Line != c.line || !strings.Contains(le.Msg, c.msg) {
				t.Errorf("got %v, want line %d %q", err, c.line, c.msg)
			}
			if Join(pieces) != c.src {
				t.Errorf("pieces do not cover the input: %q", Join(pieces))
			}
		})
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		"SELECT 1;", "CREATE FUNCTION f() AS $a$ x; $a$;", "\\restrict k\nSET a=1;\n", "E'\\''; '';",
		"/* /* */ */;", "COPY t FROM stdin;\n1\n\\.\n", "CREATE FUNCTION f() BEGIN ATOMIC SELECT 1; END;",
		"SELECT \"a\"\"b\";", "U&'x' U&\"y\";", "$1 a$b$ $$ $$;", "SET standard_conforming_strings = off; 'a\\'';",
	} {
		f.Add(s)
	}
	if b, err := os.ReadFile("../../scripts/demo-data/pagila-schema.sql"); err == nil {
		f.Add(string(b[:min(len(b), 20000)]))
	}
	f.Fuzz(func(t *testing.T, src string) {
		pieces, err := Split(src)
		if got := Join(pieces); got != src {
			t.Fatalf("join != input (err %v):\n%q\n%q", err, got, src)
		}
		line := 1
		for i, p := range pieces {
			if p.Line != line {
				t.Fatalf("piece %d has line %d, want %d", i, p.Line, line)
			}
			line += strings.Count(p.Text, "\n")
			if p.Text == "" {
				t.Fatalf("piece %d is empty", i)
			}
			if p.Unterminated && i != len(pieces)-1 {
				t.Fatalf("unterminated piece %d is not last", i)
			}
		}
		if err == nil && !strings.Contains(strings.ToLower(src), "standard_conforming_strings") {
			// Splitting a statement again gives the statement back as one piece.
			for _, p := range pieces {
				if p.Kind != Statement || p.Unterminated {
					continue
				}
				again, err := Split(p.Text)
				if err != nil {
					t.Fatalf("resplit %q: %v", p.Text, err)
				}
				if len(again) != 1 || again[0].Kind != Statement {
					t.Fatalf("resplit %q gave %d pieces", p.Text, len(again))
				}
			}
		}
	})
}

func TestSplitPagila(t *testing.T) {
	b, err := os.ReadFile("../../scripts/demo-data/pagila-schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	pieces, err := Split(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if Join(pieces) != string(b) {
		t.Fatal("join != input")
	}
	n := 0
	for _, p := range pieces {
		if p.Kind == Statement {
			n++
		}
	}
	if n < 250 { // pagila's dump, without its OWNER TO lines
		t.Errorf("only %d statements", n)
	}
}
