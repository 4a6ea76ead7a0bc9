package pgtest

import (
	"context"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestFreshDatabases(t *testing.T) {
	a := Source(t)
	b := Source(t)
	if a.Name == b.Name {
		t.Fatalf("two tests got the same database %s", a.Name)
	}
	a.Exec(t, "CREATE TABLE t(id int primary key, v text); INSERT INTO t VALUES (1,'x'),(2,NULL)")
	dst := Target(t)
	dst.Exec(t, "CREATE TABLE t(id int primary key, v text); INSERT INTO t VALUES (1,'x'),(2,NULL)")
	RequireSameData(t, a.URL, dst.URL)
	got := TableDump(t, a.URL, `public.t`, nil)
	if len(got) != 2 || got[0] != "1\tx" || got[1] != "2\t\\N" {
		t.Fatalf("TableDump = %q", got)
	}
}

func TestCompareFindsDifference(t *testing.T) {
	a := Source(t)
	b := Target(t)
	a.Exec(t, "CREATE TABLE t(id int primary key, v text); INSERT INTO t VALUES (1,'x')")
	b.Exec(t, "CREATE TABLE t(id int primary key, v text); INSERT INTO t VALUES (1,'y')")
	ft := &fakeT{TB: t}
	RequireSameTable(ft, a.URL, b.URL, "public.t")
	if !ft.failed {
		t.Fatal("RequireSameTable did not report a changed value")
	}
	if err := a.Cluster.Exec(context.Background(), a.Name, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
}

type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Helper()               {}
