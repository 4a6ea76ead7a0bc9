package delta

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestWarnTriggers: an enabled user trigger on the target is named in a warning; a disabled one
// and pgferry's capture triggers are not, and no trigger means no warning.
func TestWarnTriggers(t *testing.T) {
	db := pgtest.Target(t)
	db.Exec(t, `CREATE TABLE "Odd Name" (id int PRIMARY KEY, v text, at timestamptz);
		CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.at := now(); RETURN NEW; END$$;`)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	warn := func() string {
		var b bytes.Buffer
		warnTriggers(ctx, conn, "pgferry", &b)
		return b.String()
	}
	if w := warn(); w != "" {
		t.Fatalf("no triggers, yet: %s", w)
	}
	db.Exec(t, `CREATE TRIGGER pgferry_capture AFTER INSERT ON "Odd Name" FOR EACH ROW EXECUTE FUNCTION stamp();
		CREATE TRIGGER off BEFORE UPDATE ON "Odd Name" FOR EACH ROW EXECUTE FUNCTION stamp();
		ALTER TABLE "Odd Name" DISABLE TRIGGER off`)
	if w := warn(); w != "" {
		t.Fatalf("capture and disabled triggers only, yet: %s", w)
	}
	// A partitioned table's trigger is named once, not again for each partition's clone (clones
	// are told apart by tgparentid from 13, and are internal before 15).
	db.Exec(t, `CREATE TRIGGER set_at BEFORE INSERT OR UPDATE ON "Odd Name" FOR EACH ROW EXECUTE FUNCTION stamp();
		CREATE TABLE ev (id int, p int, at timestamptz) PARTITION BY LIST (p);
		CREATE TABLE ev_0 PARTITION OF ev FOR VALUES IN (0); CREATE TABLE ev_1 PARTITION OF ev FOR VALUES IN (1);
		CREATE TRIGGER ev_at BEFORE INSERT ON ev FOR EACH ROW EXECUTE FUNCTION stamp()`)
	w := warn()
	if !strings.Contains(w, `public."Odd Name": set_at`) || !strings.Contains(w, "public.ev: ev_at") || !strings.Contains(w, "2 user trigger(s)") {
		t.Fatalf("server %d: warning %q does not name exactly the two triggers", db.Cluster.Version, w)
	}
	// The capture triggers are told by the capture schema's names, not a fixed prefix.
	var b bytes.Buffer
	warnTriggers(ctx, conn, "mig", &b)
	if !strings.Contains(b.String(), `public."Odd Name": pgferry_capture`) {
		t.Fatalf("with --capture-schema mig, pgferry_capture is a user trigger, yet: %s", b.String())
	}
}
