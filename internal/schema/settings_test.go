package schema

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// settingsTarget makes a target whose database defaults are max_parallel_maintenance_workers = 6
// and maintenance_work_mem = 100MB (so the server's value is not the built-in one), with four
// one-row tables and public.seen(label), a volatile function that records the calling session's
// settings in public.seen_log. It returns the target and a section: pg_dump's search_path
// setting, a statement that kills its own connection the first time (apply must reconnect and
// redo it), a barrier recording 'barrier', and one CHECK constraint per table (keyed, so run on
// several connections with -j > 1) recording the table's name.
func settingsTarget(t *testing.T) (*pgtest.DB, string) {
	t.Helper()
	dst := pgtest.Target(t)
	dst.Exec(t, `DO $$BEGIN
  EXECUTE format('ALTER DATABASE %I SET max_parallel_maintenance_workers = 6', current_database());
  EXECUTE format('ALTER DATABASE %I SET maintenance_work_mem = %L', current_database(), '100MB');
END$$;
CREATE SEQUENCE public.kill_once;
CREATE TABLE public.seen_log (label text, pid int, workers text, mem text);
CREATE FUNCTION public.seen(label text) RETURNS bool VOLATILE LANGUAGE plpgsql AS $f$
BEGIN
  INSERT INTO public.seen_log VALUES (label, pg_backend_pid(),
    current_setting('max_parallel_maintenance_workers'), current_setting('maintenance_work_mem'));
  PERFORM pg_sleep(0.2);
  RETURN true;
END$f$;`)
	section := "SELECT pg_catalog.set_config('search_path', '', false);\n" +
		"SELECT CASE WHEN nextval('public.kill_once') = 1 THEN pg_terminate_backend(pg_backend_pid()) END;\n" +
		"SELECT public.seen('barrier');\n"
	for i := 0; i < 4; i++ {
		dst.Exec(t, fmt.Sprintf("CREATE TABLE public.t%d (id int); INSERT INTO public.t%d VALUES (1);", i, i))
		section += fmt.Sprintf("ALTER TABLE ONLY public.t%d ADD CONSTRAINT t%d_c CHECK (public.seen('t%d'));\n", i, i, i)
	}
	return dst, section
}

// seenLog returns the recorded rows as "label workers mem", sorted by label.
func seenLog(t *testing.T, dst *pgtest.DB) []string {
	t.Helper()
	var out string
	conn, err := pgx.Connect(context.Background(), dst.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(context.Background(), "SELECT coalesce(string_agg(label || ' ' || workers || ' ' || mem, ',' ORDER BY label), '') FROM public.seen_log").Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	if out == "" {
		return nil
	}
	return strings.Split(out, ",")
}

// TestApplySessionSettings applies the section with -j 4 and -j 1 under the default
// --parallel-workers auto, with an explicit number and a --maintenance-work-mem, and with the
// env vars: every statement, including the one run on the connection redone after it was
// killed, sees the chosen settings; a SET in the script still overrides them.
func TestApplySessionSettings(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		env        map[string]string
		extra      string // appended to the section
		workers    string // want, for every statement of the section
		mem        string
		extraWants []string
		stderr     string
	}{
		{name: "j4 auto", args: []string{"-j", "4"}, workers: "1", mem: "100MB",
			stderr: "max_parallel_maintenance_workers = 1 on each of 4 connections (the server's 6 divided by -j"},
		{name: "j1 auto", args: []string{"-j", "1"}, workers: "6", mem: "100MB"},
		{name: "j4 explicit", args: []string{"-j", "4", "--parallel-workers", "3", "--maintenance-work-mem", "1GB"}, workers: "3", mem: "1GB",
			extra: "SET maintenance_work_mem = '77MB';\nSELECT public.seen('zz script set');\n", extraWants: []string{"zz script set 3 77MB"}},
		{name: "j2 env", args: []string{"-j", "2"}, env: map[string]string{"PGFERRY_PARALLEL_WORKERS": "0", "PGFERRY_MAINTENANCE_WORK_MEM": "256MB"}, workers: "0", mem: "256MB"},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			dst, section := settingsTarget(t)
			_, errs, code := run(t, section+tc.extra, append([]string{"apply", "--target", dst.URL}, tc.args...)...)
			if code != 0 {
				t.Fatalf("apply: exit %d: %s", code, errs)
			}
			if !strings.Contains(errs, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errs)
			}
			want := []string{"barrier " + tc.workers + " " + tc.mem}
			for i := 0; i < 4; i++ {
				want = append(want, fmt.Sprintf("t%d %s %s", i, tc.workers, tc.mem))
			}
			want = append(want, tc.extraWants...)
			if got := seenLog(t, dst); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("recorded settings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if n := queryInt(t, dst.URL, "SELECT last_value FROM public.kill_once"); n != 2 {
				t.Errorf("the killed statement ran %d times, want 2 (killed once, redone)", n)
			}
			if tc.workers != "6" { // -j > 1: the keyed statements ran on several connections
				if n := queryInt(t, dst.URL, "SELECT count(DISTINCT pid) FROM public.seen_log WHERE label LIKE 't_'"); n < 2 {
					t.Errorf("the four constraints ran on %d connection(s), want several", n)
				}
			}
		})
	}
}

// TestApplyBadSessionSettings: a size the server refuses, or a bad --parallel-workers, is a
// usage error (exit 2) naming the flag, and nothing of the section runs.
func TestApplyBadSessionSettings(t *testing.T) {
	dst, section := settingsTarget(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--maintenance-work-mem", "lots"}, []string{`bad --maintenance-work-mem "lots"`, `invalid value for parameter "maintenance_work_mem"`, "hint:"}},
		{[]string{"--maintenance-work-mem", "1kB", "-j", "1"}, []string{`bad --maintenance-work-mem "1kB"`, "outside the valid range"}},
		{[]string{"--maintenance-work-mem", "1GB'; DROP TABLE public.t0; --"}, []string{"bad --maintenance-work-mem"}},
		{[]string{"--parallel-workers", "-1"}, []string{`bad --parallel-workers "-1": want 'auto' or a number >= 0`}},
		{[]string{"--parallel-workers", "many"}, []string{`bad --parallel-workers "many"`}},
	} {
		_, errs, code := run(t, section, append([]string{"apply", "--target", dst.URL, "-j", "4"}, tc.args...)...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", tc.args, code, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, errs)
			}
		}
	}
	if got := seenLog(t, dst); len(got) != 0 {
		t.Errorf("statements ran after a bad setting: %v", got)
	}
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM pg_constraint WHERE conname LIKE 't__c'") +
		queryInt(t, dst.URL, "SELECT CASE WHEN is_called THEN 1 ELSE 0 END FROM public.kill_once"); n != 0 {
		t.Errorf("statements ran after a bad setting (%d constraints or kill_once called)", n)
	}
	if n := queryInt(t, dst.URL, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 't0'"); n != 1 {
		t.Errorf("t0 is gone")
	}
}
