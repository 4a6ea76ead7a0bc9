package applyplan

import (
	"context"
	"testing"
	"time"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestRunGated: statements wait for their tables to open, overtake one that waits, and a barrier
// (here a CREATE TABLE) waits for OpenAll and holds back everything after it.
func TestRunGated(t *testing.T) {
	dst := pgtest.Target(t)
	dst.Exec(t, "CREATE TABLE t1 (id int); CREATE TABLE t2 (id int); CREATE TABLE t3 (id int)")
	plan, err := New("pgschema", []byte(`SET lock_timeout = '10s';
CREATE INDEX i1 ON public.t1 USING btree (id);
CREATE UNIQUE INDEX i2 ON public.t2 USING btree (id);
ALTER TABLE ONLY public.t2 ADD CONSTRAINT t2_self FOREIGN KEY (id) REFERENCES public.t2(id) NOT VALID;
CREATE TABLE public.t4 (x int);
CREATE INDEX i3 ON public.t3 USING btree (id);
`))
	if err != nil {
		t.Fatal(err)
	}
	gate := NewGate()
	done := make(chan error, 1)
	go func() { done <- plan.RunGated(context.Background(), dst.URL, 2, gate) }()
	exists := func(name string) bool {
		return pgtest.QueryInt(t, dst.URL, "SELECT count(*) FROM pg_class WHERE relname = '"+name+"'") == 1
	}
	waitFor := func(name string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !exists(name); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never appeared", name)
			}
		}
	}
	gate.Open("public.t2")
	waitFor("i2")
	time.Sleep(300 * time.Millisecond)
	if exists("i1") || exists("t4") || exists("i3") {
		t.Fatal("a statement ran before its table was open")
	}
	gate.Open("public.t1")
	gate.Open("public.t3")
	waitFor("i1")
	time.Sleep(300 * time.Millisecond)
	if exists("t4") || exists("i3") {
		t.Fatal("the barrier, or a statement after it, ran before OpenAll")
	}
	if pgtest.QueryInt(t, dst.URL, "SELECT count(*) FROM pg_constraint WHERE conname = 't2_self'") != 1 {
		t.Error("the self-referencing foreign key (its table named twice) did not run")
	}
	gate.OpenAll()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("RunGated did not finish after OpenAll")
	}
	if !exists("t4") || !exists("i3") {
		t.Error("the statements after the barrier did not run")
	}
}
