package capture

import (
	"context"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/ident"
)

// TestCheckRowSecurity: check blocks on each table whose policies apply to the role (FORCEd on
// its own table, or enabled on another role's), naming the table and the remedies; an enabled
// but not forced own table is fine, and BYPASSRLS clears them all.
func TestCheckRowSecurity(t *testing.T) {
	db := newOwnerDB(t, `
CREATE TABLE public.forced (id int PRIMARY KEY, tenant int);
ALTER TABLE public.forced ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.forced FORCE ROW LEVEL SECURITY;
CREATE POLICY mine ON public.forced USING (tenant = 1);
CREATE TABLE public.enabled (id int PRIMARY KEY);
ALTER TABLE public.enabled ENABLE ROW LEVEL SECURITY;
CREATE TABLE public.forced_off (id int PRIMARY KEY);
ALTER TABLE public.forced_off FORCE ROW LEVEL SECURITY;`)
	db.Exec(t, `CREATE TABLE public.theirs (id int PRIMARY KEY); ALTER TABLE public.theirs ENABLE ROW LEVEL SECURITY;
GRANT SELECT, TRIGGER ON public.theirs TO `+ident.Quote(db.Owner))
	ctx := context.Background()
	problems := func() map[string]Problem {
		rep, err := Check(ctx, db.Conn(t, db.Owner), CheckOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]Problem{}
		for _, p := range rep.Problems {
			if p.Kind == "row_security" {
				m[p.Table] = p
				if p.Severity != "error" {
					t.Errorf("%s: severity %s, want error", p.Table, p.Severity)
				}
			}
		}
		return m
	}
	got := problems()
	if len(got) != 2 {
		t.Errorf("row_security problems %+v, want public.forced and public.theirs", got)
	}
	f := got["public.forced"]
	for _, want := range []string{"FORCE ROW LEVEL SECURITY", "ALTER ROLE " + ident.Quote(db.Owner) + " BYPASSRLS", `ALTER TABLE "public"."forced" NO FORCE ROW LEVEL SECURITY`} {
		if !strings.Contains(f.Message+" "+f.Remedy, want) {
			t.Errorf("public.forced: %q lacks %q", f.Message+" remedy: "+f.Remedy, want)
		}
	}
	if p := got["public.theirs"]; !strings.Contains(p.Message, "does not own") || !strings.Contains(p.Remedy, "BYPASSRLS") {
		t.Errorf("public.theirs: %+v", p)
	}
	if rep, err := Check(ctx, db.Conn(t, db.Owner), CheckOptions{Filter: catalog.Filter{ExcludeTableData: []string{"forced", "theirs"}}}); err != nil || rep.Blocking != 0 {
		t.Errorf("with --exclude-table-data forced,theirs: %v, problems %+v", err, rep.Problems)
	}
	db.Exec(t, "ALTER ROLE "+ident.Quote(db.Owner)+" BYPASSRLS")
	if got := problems(); len(got) != 0 {
		t.Errorf("with BYPASSRLS: %+v", got)
	}
}
