package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPreflightTargetCannotCreate: a source holding what a non-superuser target role cannot
// create (an extension that is not trusted, dblink; an event trigger) is refused by migrate.sh's
// preflight before anything changes on either side, each object named with its remedy; with the
// remedies applied (the extension installed by an administrator, event triggers left out) the
// preflight passes.
func TestPreflightTargetCannotCreate(t *testing.T) {
	requireTools(t)
	t.Parallel()
	m := newEmptyMigration(t, true)
	for _, e := range []string{"dblink", "citext"} {
		if queryInt(t, m.dstSuper, "SELECT count(*) FROM pg_available_extensions WHERE name = '"+e+"'") == 0 {
			t.Skipf("extension %s is not available on the target server", e)
		}
	}
	mustExec(t, m.srcSuper, `CREATE EXTENSION dblink; CREATE EXTENSION citext;
CREATE FUNCTION public.no_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE 'ddl'; END$$;
CREATE EVENT TRIGGER "audit ddl" ON ddl_command_end EXECUTE PROCEDURE public.no_drop()`)
	mustExec(t, m.src, `CREATE TABLE public.t (id int PRIMARY KEY, v public.citext); INSERT INTO public.t VALUES (1, 'a')`)

	out := m.script(t, 1, "migrate.sh")
	for _, want := range []string{
		"extension dblink: only a superuser can create it", "CREATE EXTENSION dblink in the target database",
		`event trigger "audit ddl": only a superuser can create it`, "PGFERRY_EXCLUDE_TYPE='EVENT TRIGGER'",
		"nothing was changed on either side",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate.sh's refusal does not say %q", want)
		}
	}
	if strings.Contains(out, "extension citext") {
		t.Errorf("migrate.sh refused citext, which the target's role may create (trusted)")
	}
	if exists(m.stateDir, "done/roles") || queryInt(t, m.dstSuper, `SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace`) != 0 ||
		queryInt(t, m.srcSuper, `SELECT count(*) FROM pg_namespace WHERE nspname = 'pgferry'`) != 0 {
		t.Fatalf("the refused preflight changed something")
	}

	mustExec(t, m.dstSuper, "CREATE EXTENSION dblink")
	m.env = append(m.env, "PGFERRY_EXCLUDE_TYPE=EVENT TRIGGER")
	out = m.script(t, 0, "migrate.sh", "--until", "preflight")
	if strings.Contains(out, "cannot create") {
		t.Errorf("the preflight still refuses after the remedies")
	}
	// the remedy holds: the cutover's triggers section leaves the event trigger out
	dump := exec.Command("pgschema", "dump", "--source", m.src, "--section", "triggers")
	dump.Env = m.env
	b, err := dump.CombinedOutput()
	if err != nil || strings.Contains(string(b), "EVENT TRIGGER") {
		t.Errorf("pgschema dump --section triggers with PGFERRY_EXCLUDE_TYPE='EVENT TRIGGER': %v\n%s", err, b)
	}
}
