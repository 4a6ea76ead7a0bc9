package delta

import (
	"sort"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

const keylessApplySchema = `
CREATE TABLE public.kl (a int, f float8, n numeric, j json, p point, t text);
CREATE TABLE public.kl_nn (id int NOT NULL, v text NOT NULL);
CREATE INDEX ON public.kl_nn (id);
CREATE TABLE public.kd (id int PRIMARY KEY, v text);
`

// TestApplyKeylessRows: rows records make the target hold exactly count copies of each row,
// matched by identity (NULL = NULL, 1.0 <> 1.00, a float in an 11 server's 17 digits finds the
// target's shortest form, json and point have no =); applying the batch again changes nothing.
func TestApplyKeylessRows(t *testing.T) {
	dst := pgtest.Target(t)
	dst.Exec(t, keylessApplySchema+`
INSERT INTO public.kl VALUES (NULL, NULL, NULL, NULL, NULL, NULL), (NULL, NULL, NULL, NULL, NULL, NULL),
  (1, 0.1, 1.0, '{"a": 1}', '(1,2)', 'x'), (1, 0.1, 1.00, '{"a": 1}', '(1,2)', 'x'), (2, 0.5, 2, '[]', '(0,0)', 'gone');
INSERT INTO public.kl_nn SELECT g % 10, 'v' || g FROM generate_series(1, 100) g;`)
	in := `{"op":"begin","from":"","to":"100:100:"}
{"op":"rows","table":"public.kl","row":{"a":null,"f":null,"n":null,"j":null,"p":null,"t":null},"count":3}
{"op":"rows","table":"public.kl","row":{"a":"1","f":"0.10000000000000001","n":"1.0","j":"{\"a\": 1}","p":"(1,2)","t":"x"},"count":2}
{"op":"rows","table":"public.kl","row":{"a":"2","f":"0.5","n":"2","j":"[]","p":"(0,0)","t":"gone"},"count":0}
{"op":"rows","table":"public.kl","row":{"a":"3","f":"1e+300","n":"3","j":"{}","p":"(3,3)","t":"new\ttab"},"count":1}
{"op":"rows","table":"public.kl_nn","row":{"id":"3","v":"v3"},"count":0}
{"op":"rows","table":"public.kl_nn","row":{"id":"4","v":"v4"},"count":2}
{"op":"commit","to":"100:100:","rows":6}
`
	want := []string{
		"1\t3fb999999999999a\t1.0\t{\"a\": 1}\t(1,2)\tx", "1\t3fb999999999999a\t1.0\t{\"a\": 1}\t(1,2)\tx",
		"1\t3fb999999999999a\t1.00\t{\"a\": 1}\t(1,2)\tx",
		"3\t7e37e43c8800759c\t3\t{}\t(3,3)\tnew\\ttab",
		`\N	\N	\N	\N	\N	\N`, `\N	\N	\N	\N	\N	\N`, `\N	\N	\N	\N	\N	\N`,
	}
	cols := []string{"a", "encode(float8send(f), 'hex')", "n", "j", "p", "t"}
	for round := range 2 {
		if err := applyText(t, dst.URL, in); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if got := pgtest.TableDump(t, dst.URL, "public.kl", cols); strings.Join(got, "|") != strings.Join(pgtestSorted(want), "|") {
			t.Fatalf("round %d: kl = %q\nwant %q", round, got, pgtestSorted(want))
		}
		got := pgtest.TableDump(t, dst.URL, "public.kl_nn", []string{"id", "v"})
		if n := count(got, "4\tv4"); len(got) != 100 || n != 2 || count(got, "3\tv3") != 0 {
			t.Fatalf("round %d: kl_nn = %q", round, got)
		}
	}
}

// TestApplyKeylessBadInput: a row named twice in a batch, and rows records mixed with upserts
// for one table, are refused and nothing of the batch is committed.
func TestApplyKeylessBadInput(t *testing.T) {
	dst := pgtest.Target(t)
	dst.Exec(t, keylessApplySchema+`INSERT INTO public.kl_nn VALUES (1, 'keep')`)
	begin := `{"op":"begin","from":"","to":"100:100:"}` + "\n"
	del := `{"op":"rows","table":"public.kl_nn","row":{"id":"1","v":"keep"},"count":0}` + "\n"
	for _, c := range []struct{ name, input, want string }{
		{"twice", begin + del + del + `{"op":"commit","to":"100:100:","rows":2}` + "\n", "more than one rows record"},
		{"mixed", begin + del + `{"op":"rows","table":"public.kd","row":{"id":"1","v":"x"},"count":1}` + "\n" +
			`{"op":"upsert","table":"public.kd","row":{"id":"1","v":"x"}}` + "\n", "both rows records and upserts"},
		{"no key", begin + `{"op":"upsert","table":"public.kl_nn","row":{"id":"1","v":"x"}}` + "\n", "no primary key"},
		{"negative", begin + `{"op":"rows","table":"public.kl_nn","row":{"id":"1","v":"keep"},"count":-1}` + "\n", `"count" of 0 or more`},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := applyText(t, dst.URL, c.input)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
			if got := pgtest.TableDump(t, dst.URL, "public.kl_nn", []string{"id", "v"}); len(got) != 1 || got[0] != "1\tkeep" {
				t.Fatalf("something of the bad batch was committed: %q", got)
			}
		})
	}
}

func count(lines []string, s string) (n int) {
	for _, l := range lines {
		if l == s {
			n++
		}
	}
	return n
}

func pgtestSorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
