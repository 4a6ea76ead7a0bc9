package schema

import (
	"strings"
	"testing"
)

// TestDropOwnerOfBootstrapPublic: pg_dump 15 on a PostgreSQL 11..14 source writes the public
// schema's owner (the bootstrap superuser); pgschema dump drops that one statement only.
func TestDropOwnerOfBootstrapPublic(t *testing.T) {
	src := `--
-- Name: public; Type: SCHEMA; Schema: -; Owner: postgres
--

-- *not* creating schema, since initdb creates it


ALTER SCHEMA public OWNER TO postgres;

--
-- Name: demo; Type: SCHEMA; Schema: -; Owner: postgres
--

CREATE SCHEMA demo;


ALTER SCHEMA demo OWNER TO postgres;
`
	sc, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	sc.DropOwner("SCHEMA", "public", "postgres")
	var b strings.Builder
	for _, e := range sc.Entries {
		for _, c := range e.Chunks {
			b.WriteString(c.Text())
		}
	}
	got := b.String()
	if strings.Contains(got, "ALTER SCHEMA public OWNER TO") {
		t.Errorf("public's owner statement kept:\n%s", got)
	}
	if !strings.Contains(got, "ALTER SCHEMA demo OWNER TO postgres") || !strings.Contains(got, "CREATE SCHEMA demo") {
		t.Errorf("other statements lost:\n%s", got)
	}
}
