package delta

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/deltarec"
	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/state"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const applySchema = `
CREATE SCHEMA "App Data";
CREATE TABLE "App Data"."Users"("Id" int, region text, email text UNIQUE, note text, at timestamptz, PRIMARY KEY ("Id", region));
CREATE TABLE public.log(id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, msg text, dbl int GENERATED ALWAYS AS (length(msg)) STORED);
`

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func applyText(t *testing.T, url, input string) error {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, url)
	a, err := NewApplier(ctx, conn, "pgferry")
	if err != nil {
		t.Fatal(err)
	}
	return ApplyInput(ctx, a, strings.NewReader(input))
}

func TestApplyRecords(t *testing.T) {
	dst := pgtest.Target(t)
	dst.Exec(t, applySchema+`INSERT INTO "App Data"."Users" VALUES (1,'eu','a@x','old',now()), (2,'eu','b@x',NULL,NULL), (3,'us','c@x','gone',NULL);
INSERT INTO public.log(msg) OVERRIDING SYSTEM VALUE VALUES ('x')`)
	in := `{"op":"begin","from":"","to":"100:100:","at":"2026-01-01T00:00:00Z"}
{"op":"upsert","table":"App Data.Users","row":{"Id":"1","region":"eu","email":"b@x","note":"tab\there\nnew \\ line","at":"2024-02-29 12:00:00+00"}}
{"op":"upsert","table":"App Data.Users","row":{"Id":"2","region":"eu","email":"a@x","note":null,"at":null}}
{"op":"delete","table":"App Data.Users","key":{"Id":"3","region":"us"}}
{"op":"delete","table":"App Data.Users","key":{"Id":"9","region":"us"}}
{"op":"truncate","table":"public.log"}
{"op":"upsert","table":"public.log","row":{"id":"7","msg":"héllo \"q\""}}
{"op":"commit","to":"100:100:","rows":5}
`
	if err := applyText(t, dst.URL, in); err != nil {
		t.Fatal(err)
	}
	got := pgtest.TableDump(t, dst.URL, `"App Data"."Users"`, []string{`"Id"`, "region", "email", "note", "at"})
	want := []string{"1\teu\tb@x\ttab\\there\\nnew \\\\ line\t2024-02-29 12:00:00+00", "2\teu\ta@x\t\\N\t\\N"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Users = %q\nwant %q", got, want)
	}
	if got := pgtest.TableDump(t, dst.URL, "public.log", []string{"id", "msg", "dbl"}); len(got) != 1 || got[0] != "7\théllo \"q\"\t9" {
		t.Fatalf("log = %q", got)
	}
	ctx := context.Background()
	a, ok, err := state.ReadApply(ctx, connect(t, dst.URL), "pgferry")
	if err != nil || !ok || a.Position != "100:100:" || a.Rows != 5 || a.Batches != 1 || a.SourceTime.IsZero() {
		t.Fatalf("apply state = %+v %v %v", a, ok, err)
	}
	// Applying the same batch again changes nothing (idempotent); a batch from a later position
	// than the target's is refused.
	if err := applyText(t, dst.URL, in); err != nil {
		t.Fatal(err)
	}
	if got2 := pgtest.TableDump(t, dst.URL, `"App Data"."Users"`, []string{`"Id"`, "region", "email", "note", "at"}); strings.Join(got2, "|") != strings.Join(want, "|") {
		t.Fatalf("re-apply changed Users: %q", got2)
	}
	err = applyText(t, dst.URL, `{"op":"begin","from":"200:200:","to":"300:300:"}`+"\n")
	var gap *GapError
	if !errors.As(err, &gap) {
		t.Fatalf("gap not refused: %v", err)
	}
}

func TestApplyBadInput(t *testing.T) {
	dst := pgtest.Target(t)
	dst.Exec(t, applySchema+`INSERT INTO "App Data"."Users" VALUES (1,'eu','a@x','keep',NULL)`)
	good := `{"op":"begin","from":"","to":"100:100:"}
{"op":"delete","table":"App Data.Users","key":{"Id":"1","region":"eu"}}
`
	for _, c := range []struct{ name, input, wantMsg, wantTable string }{
		{"malformed", good + "{\"op\":\"upsert\",\n", "line 3", ""},
		{"unknown op", good + `{"op":"merge","table":"x"}` + "\n", "unknown op", ""},
		{"unknown table", good + `{"op":"upsert","table":"public.nope","row":{"a":"1"}}` + "\n", "no such table", "public.nope"},
		{"unknown column", good + `{"op":"upsert","table":"App Data.Users","row":{"Id":"1","region":"eu","email":null,"note":null,"at":null,"extra":"1"}}` + "\n", "unknown column \"extra\"", "App Data.Users"},
		{"missing column", good + `{"op":"upsert","table":"App Data.Users","row":{"Id":"1","region":"eu"}}` + "\n", "lacks column", "App Data.Users"},
		{"bad value", good + `{"op":"upsert","table":"App Data.Users","row":{"Id":"x","region":"eu","email":null,"note":null,"at":null}}` + "\n{\"op\":\"commit\",\"to\":\"100:100:\",\"rows\":2}\n", "invalid input syntax", ""},
		{"row count", good + `{"op":"commit","to":"100:100:","rows":7}` + "\n", "rows=7", ""},
		{"ends inside batch", good, "input ended inside the batch", ""},
		{"no newline", good + `{"op":"commit","to":"100:100:","rows":1}`, "no newline", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := applyText(t, dst.URL, c.input)
			if err == nil || !strings.Contains(err.Error(), c.wantMsg) {
				t.Fatalf("err = %v, want it to mention %q", err, c.wantMsg)
			}
			var le *deltarec.LineError
			if c.wantTable != "" && (!errors.As(err, &le) || le.Table != c.wantTable || le.Line != 3) {
				t.Fatalf("err = %#v, want line 3 of table %s", err, c.wantTable)
			}
			if got := pgtest.TableDump(t, dst.URL, `"App Data"."Users"`, []string{`"Id"`, "note"}); len(got) != 1 || got[0] != "1\tkeep" {
				t.Fatalf("something of the bad batch was committed: %q", got)
			}
		})
	}
}
