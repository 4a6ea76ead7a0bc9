package delta

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestApplyWideTable: a table of 1,600 columns (PostgreSQL's most) leaves no room for the staging
// table's flag column; its upserts and deletes are staged apart and applied, deletes first, so a
// unique value moving from a deleted key to an upserted one in the same batch does not clash.
func TestApplyWideTable(t *testing.T) {
	dst := pgtest.Target(t)
	cols := []string{"id int PRIMARY KEY", "u text UNIQUE"}
	for i := 2; i < maxColumns; i++ {
		cols = append(cols, fmt.Sprintf("c%d int", i))
	}
	dst.Exec(t, fmt.Sprintf("CREATE TABLE public.wide (%s); INSERT INTO public.wide (id, u, c1599) VALUES (1, 'x', 1), (2, NULL, 2), (3, 'y', 3)", strings.Join(cols, ", ")))
	row := func(id int, u string, last int) string {
		var b strings.Builder
		fmt.Fprintf(&b, `{"op":"upsert","table":"public.wide","row":{"id":"%d","u":%s`, id, u)
		for i := 2; i < maxColumns; i++ {
			v := "null"
			if i == maxColumns-1 {
				v = fmt.Sprintf(`"%d"`, last)
			}
			fmt.Fprintf(&b, `,"c%d":%s`, i, v)
		}
		return b.String() + "}}\n"
	}
	in := `{"op":"begin","from":"","to":"100:100:"}` + "\n" + row(2, `"x"`, 20) +
		`{"op":"delete","table":"public.wide","key":{"id":"1"}}` + "\n" + row(4, `"tab\tz"`, 40) +
		`{"op":"commit","to":"100:100:","rows":3}` + "\n"
	if err := applyText(t, dst.URL, in); err != nil {
		t.Fatal(err)
	}
	got := pgtest.TableDump(t, dst.URL, "public.wide", []string{"id", "coalesce(u, '-')", "c1599"})
	if want := "2\tx\t20,3\ty\t3,4\ttab\\tz\t40"; strings.Join(got, ",") != want {
		t.Errorf("after apply: %q, want %q", strings.Join(got, ","), want)
	}
}
