package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// jsonField is one row of a field table of docs/json.md.
type jsonField struct {
	typ      string // "integer", "array of object", "time or null", ...
	optional bool
}

// jsonSchema maps each documented document ("### title" in docs/json.md) to its fields by path
// ("tables[].key_columns").
type jsonSchema map[string]map[string]jsonField

var fieldRow = regexp.MustCompile(`^\| *([a-z_0-9.\[\]]+) *\| *([a-z ]+?) *\| *(always|optional) *\|`)

// loadJSONSchema parses docs/json.md: every "### title" followed by a field table.
func loadJSONSchema(t *testing.T) jsonSchema {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "docs", "json.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := jsonSchema{}
	title := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "### ") {
			title = strings.TrimSpace(line[4:])
			s[title] = map[string]jsonField{}
			continue
		}
		if m := fieldRow.FindStringSubmatch(line); m != nil && title != "" {
			s[title][m[1]] = jsonField{typ: m[2], optional: m[3] == "optional"}
		} else if strings.HasPrefix(line, "| ") && title != "" && !strings.HasPrefix(line, "| field ") {
			t.Fatalf("docs/json.md, %s: unparsable field row %q", title, line)
		}
	}
	for title, fields := range s {
		if len(fields) == 0 {
			t.Fatalf("docs/json.md: %s has no field table", title)
		}
	}
	return s
}

// check compares one document with the schema of title: every field documented, every field that
// is not optional present, every value of its documented type.
func (s jsonSchema) check(title string, doc any) []string {
	fields, ok := s[title]
	if !ok {
		return []string{"docs/json.md has no section ### " + title}
	}
	var errs []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		obj, ok := v.(map[string]any)
		if !ok {
			errs = append(errs, path+": not an object")
			return
		}
		for k, val := range obj {
			p := joinPath(path, k)
			f, ok := fields[p]
			if !ok {
				errs = append(errs, p+": not in docs/json.md")
				continue
			}
			if err := checkType(f.typ, val); err != nil {
				errs = append(errs, p+": "+err.Error())
				continue
			}
			switch {
			case strings.HasPrefix(f.typ, "object") && val != nil:
				walk(p, val)
			case strings.HasPrefix(f.typ, "array of object") && val != nil:
				for _, e := range val.([]any) {
					walk(p+"[]", e)
				}
			}
		}
		for p, f := range fields {
			if parentPath(p) == path && !f.optional {
				if _, ok := obj[p[strings.LastIndexAny(p, ".]")+1:]]; !ok {
					errs = append(errs, p+": missing")
				}
			}
		}
	}
	walk("", doc)
	sort.Strings(errs)
	return errs
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// parentPath is the object path a field belongs to: "" for top level, "tables[]" for
// "tables[].name", "source" for "source.database".
func parentPath(p string) string {
	i := strings.LastIndex(p, ".")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// checkType checks v (decoded with UseNumber) against a documented type.
func checkType(typ string, v any) error {
	base, nullable := strings.CutSuffix(typ, " or null")
	if v == nil {
		if nullable {
			return nil
		}
		return errors.New("null, documented as " + typ)
	}
	bad := errors.New("not " + base)
	switch base {
	case "string":
		if _, ok := v.(string); !ok {
			return bad
		}
	case "time":
		s, ok := v.(string)
		if _, err := time.Parse(time.RFC3339Nano, s); !ok || err != nil {
			return errors.New("not an RFC 3339 time")
		}
	case "integer":
		n, ok := v.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			return bad
		}
	case "number":
		if _, ok := v.(json.Number); !ok {
			return bad
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return bad
		}
	case "object":
		if _, ok := v.(map[string]any); !ok {
			return bad
		}
	case "map":
		m, ok := v.(map[string]any)
		for _, e := range m {
			if _, s := e.(string); !s && e != nil {
				ok = false
			}
		}
		if !ok {
			return errors.New("not a map of strings")
		}
	case "array of string", "array of object":
		a, ok := v.([]any)
		for _, e := range a {
			if _, isStr := e.(string); base == "array of string" && !isStr {
				ok = false
			}
			if _, isObj := e.(map[string]any); base == "array of object" && !isObj {
				ok = false
			}
		}
		if !ok {
			return bad
		}
	default:
		return errors.New("docs/json.md uses an unknown type " + typ)
	}
	return nil
}

// decodeAll reads every JSON value in b (one indented document or one a line).
func decodeAll(t *testing.T, what string, b []byte) []any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []any
	for {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", what, err, b)
		}
		out = append(out, v)
	}
	return out
}

// jsonRun runs a tool, wants exit code want, and returns its stdout and stderr.
func jsonRun(t *testing.T, want int, name string, args ...string) ([]byte, []byte) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != want {
		t.Fatalf("%s %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), code, want, out.Bytes(), errb.Bytes())
	}
	return out.Bytes(), errb.Bytes()
}

// progressDocs sorts --progress json lines of stderr (diagnostics are not JSON) by their event.
func progressDocs(t *testing.T, stderr []byte) map[string][]any {
	out := map[string][]any{}
	for _, line := range strings.Split(string(stderr), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		for _, v := range decodeAll(t, "progress", []byte(line)) {
			title := "progress record"
			if m, _ := v.(map[string]any); m["event"] == "table_done" {
				title = "table_done record"
			}
			out[title] = append(out[title], v)
		}
	}
	return out
}

// TestJSONSchemaChecker: the checker itself reports unknown, missing, null and mistyped fields.
func TestJSONSchemaChecker(t *testing.T) {
	s := jsonSchema{"doc": {
		"n": {typ: "integer"}, "opt": {typ: "string", optional: true}, "at": {typ: "time or null"},
		"rows": {typ: "array of object"}, "rows[].table": {typ: "string"},
	}}
	doc := decodeAll(t, "doc", []byte(`{"n": 1.5, "at": null, "rows": [{"table": {"schema": "s"}}, {}], "extra": 1}`))[0]
	got := strings.Join(s.check("doc", doc), "; ")
	want := "extra: not in docs/json.md; n: not integer; rows[].table: missing; rows[].table: not string"
	if got != want {
		t.Fatalf("checker found %q, want %q", got, want)
	}
	if errs := s.check("doc", decodeAll(t, "doc", []byte(`{"n": 2, "at": "2026-01-02T03:04:05Z", "rows": []}`))[0]); len(errs) > 0 {
		t.Fatalf("a valid document failed: %v", errs)
	}
}

const jsonDDL = `CREATE TABLE public.orders (id int PRIMARY KEY, note text, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.logs (msg text);
CREATE TABLE public.skipme (id int PRIMARY KEY);
`

// TestJSONSchema runs every tool's JSON outputs against test clusters (as non-superusers) and
// checks each document against docs/json.md; every documented document must be produced.
func TestJSONSchema(t *testing.T) {
	requireTools(t)
	schema := loadJSONSchema(t)
	m := newEmptyMigration(t, true)
	mustExec(t, m.src, jsonDDL+`INSERT INTO orders(id, note) SELECT g, 'n' || g FROM generate_series(1, 3000) g;
INSERT INTO logs SELECT 'm' || g FROM generate_series(1, 200) g; INSERT INTO skipme VALUES (1)`)
	mustExec(t, m.dst, jsonDDL)
	docs := map[string][]any{}
	add := func(title string, out []byte) { docs[title] = append(docs[title], decodeAll(t, title, out)...) }
	addProgress := func(stderr []byte) {
		for title, vs := range progressDocs(t, stderr) {
			docs[title] = append(docs[title], vs...)
		}
	}
	src, dst := "--source="+m.src, "--target="+m.dst

	out, _ := jsonRun(t, 0, "pgtrig", "check", src, "--json")
	add("pgtrig check --json", out)
	out, _ = jsonRun(t, 0, "pgtrig", "check", src, "--excluded", "-T", "public.skipme", "--exclude-table-data", "public.logs", "--json")
	add("pgtrig check --excluded --json", out)
	out, _ = jsonRun(t, 0, "pgtrig", "install", src, "--json")
	add("pgtrig install --json", out)
	mustExec(t, m.src, `UPDATE orders SET note = 'u' WHERE id <= 10; DELETE FROM orders WHERE id = 11; INSERT INTO logs VALUES ('new')`)
	out, _ = jsonRun(t, 0, "pgtrig", "status", src, "--json")
	add("pgtrig status --json", out)
	out, _ = jsonRun(t, 0, "pgcopyout", src, "--plan", "--split-size", "32kB")
	add("pgcopyout --plan", out)

	dir := t.TempDir()
	copyCmd := `pgcopyout --source "$1" -j 2 --split-size 32kB --progress json 2>"$3/out.err" | pgcopyin --target "$2" --progress json 2>"$3/in.err"`
	if b, err := exec.Command("bash", "-o", "pipefail", "-c", copyCmd, "copy", m.src, m.dst, dir).CombinedOutput(); err != nil {
		outErr, _ := os.ReadFile(filepath.Join(dir, "out.err"))
		inErr, _ := os.ReadFile(filepath.Join(dir, "in.err"))
		t.Fatalf("copy: %v\n%s\npgcopyout:\n%s\npgcopyin:\n%s", err, b, outErr, inErr)
	}
	for _, f := range []string{"out.err", "in.err"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		addProgress(b)
	}

	mustExec(t, m.src, `UPDATE orders SET note = 'after copy' WHERE id <= 20; TRUNCATE skipme`)
	out, _ = jsonRun(t, 1, "pgdelta", "status", src, dst, "--json") // the changes after the copy wait
	add("pgdelta status --json", out)
	jsonRun(t, 0, "pgdelta", "sync", src, dst)
	out, _ = jsonRun(t, 0, "pgdelta", "status", src, dst, "--json")
	add("pgdelta status --json", out)
	out, _ = jsonRun(t, 0, "pgdelta", "targets", src, "--json")
	add("pgdelta targets --json", out)

	// the objects' owner exists on the target, as pgschema roles makes it in a migration
	user := func(url string) string { u, _, _ := strings.Cut(strings.TrimPrefix(url, "postgres://"), "@"); return u }
	mustExec(t, m.dstSuper, fmt.Sprintf(`CREATE ROLE %q; GRANT %q TO %q`, user(m.src), user(m.src), user(m.dst)))
	mustExec(t, m.src, `SELECT lo_from_bytea(0, 'a large object'), lo_from_bytea(0, '')`)
	out, _ = jsonRun(t, 1, "pgdelta", "lo-sync", src, dst, "--check", "--json") // not copied yet
	add("pgdelta lo-sync --check --json", out)
	out, _ = jsonRun(t, 0, "pgdelta", "lo-sync", src, dst, "--json", "--progress", "none")
	add("pgdelta lo-sync --json", out)
	out, _ = jsonRun(t, 0, "pgdelta", "lo-sync", src, dst, "--check", "--json")
	add("pgdelta lo-sync --check --json", out)

	out, errOut := jsonRun(t, 0, "pgverify", src, dst, "--json", "--progress", "json")
	add("pgverify --json", out)
	addProgress(errOut)
	mustExec(t, m.dst, `INSERT INTO orders(id, note) VALUES (99999, 'only here'); UPDATE orders SET note = 'x' WHERE id = 5; INSERT INTO logs VALUES ('dup')`)
	out, _ = jsonRun(t, 1, "pgverify", src, dst, "--json", "--progress", "none")
	add("pgverify --json", out)
	out, _ = jsonRun(t, 1, "pgverify", src, dst, "--json", "--mode", "quick", "--progress", "none")
	add("pgverify --json", out)

	mustExec(t, m.src, `CREATE INDEX orders_note ON orders(note)`)
	out, _ = jsonRun(t, 1, "pgschema", "diff", src, dst, "--json")
	add("pgschema diff --json", out)
	mustExec(t, m.srcSuper, `CREATE PUBLICATION everything FOR ALL TABLES`)
	out, _ = jsonRun(t, 1, "pgschema", "preflight", src, dst, "--json")
	add("pgschema preflight --json", out)
	mustExec(t, m.srcSuper, `DROP PUBLICATION everything`)

	out, _ = jsonRun(t, 0, "pgtrig", "fence", "up", src, "--json")
	add("pgtrig fence up --json", out)
	pos, _ := docs["pgtrig fence up --json"][0].(map[string]any)["position"].(string)
	out, _ = jsonRun(t, 0, "pgtrig", "fence", "wait", src, "--position", pos, "--json")
	add("pgtrig fence wait --json", out)
	out, _ = jsonRun(t, 0, "pgtrig", "fence", "status", src, "--json")
	add("pgtrig fence status --json", out)
	jsonRun(t, 0, "pgtrig", "fence", "down", src)
	out, _ = jsonRun(t, 0, "pgtrig", "fence", "status", src, "--json")
	add("pgtrig fence status --json", out)

	checkJSONDocs(t, schema, docs)
}

// checkJSONDocs checks every produced document and that every documented one was produced.
func checkJSONDocs(t *testing.T, schema jsonSchema, docs map[string][]any) {
	t.Helper()
	for title := range schema {
		if len(docs[title]) == 0 {
			t.Errorf("docs/json.md documents %q but the test produced none", title)
		}
	}
	for title, vs := range docs {
		for i, v := range vs {
			for _, e := range schema.check(title, v) {
				t.Errorf("%s (document %d): %s", title, i+1, e)
			}
		}
		t.Logf("%s: %d document(s) checked", title, len(vs))
	}
}
