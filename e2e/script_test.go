package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/pgferry/pgferry/internal/pgtest"
)

// TestScripts runs testdata/*.txtar. Each script gets a fresh source and target database in
// $SRC and $DST (superuser URLs), the tools on PATH, and $REPO pointing at the repository.
func TestScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txtar")
	if len(files) == 0 {
		t.Skip("no scripts yet")
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			for _, side := range []struct{ cluster, env string }{{"source", "SRC"}, {"target", "DST"}} {
				c, err := pgtest.SharedCluster(side.cluster)
				if err != nil {
					if pgtest.Required() {
						return err
					}
					env.T().Skip("no PostgreSQL server: " + err.Error())
				}
				name, err := c.CreateDB(context.Background(), filepath.Base(env.WorkDir))
				if err != nil {
					return err
				}
				env.Defer(func() { c.DropDB(name) })
				env.Setenv(side.env, c.URL(name))
				env.Setenv(side.env+"_CLUSTER_SOCK", c.SockDir)
			}
			env.Setenv("REPO", repoRoot)
			env.Setenv("PATH", os.Getenv("PATH"))
			env.Setenv("HOME", env.WorkDir)
			return nil
		},
	})
}

// TestScriptsDoNotParseSQL: the bash scripts only orchestrate; anything that reads SQL goes
// through pgschema, which parses it. A script fails the check when awk, sed, grep (egrep, fgrep,
// gawk, mawk, perl) reads SQL: as a later stage of a pipeline that starts with pg_dump,
// pg_dumpall, pg_restore or pgschema (also through $(...), <(...), a variable naming the tool, or
// a file such as cat x.sql | grep), or with a file operand or < redirect that is SQL: a name
// ending in .sql or .dump, a variable assigned such a name, or a file a SQL tool's output was
// redirected to. Text tools over anything else (logs, JSON status, a tool's report) are allowed.
func TestScriptsDoNotParseSQL(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot, "scripts", "*.sh"))
	lib, _ := filepath.Glob(filepath.Join(repoRoot, "scripts", "lib", "*.sh"))
	files = append(files, lib...)
	if len(files) < 5 {
		t.Fatalf("found %d scripts under %s/scripts", len(files), repoRoot)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range sqlTextProblems(string(src)) {
			t.Errorf("%s:%s", filepath.Base(f), p)
		}
	}
}

// TestSQLTextCheck shows that the check above catches the shapes it names, and passes text
// tools over logs and reports.
func TestSQLTextCheck(t *testing.T) {
	bad := map[string]string{
		"pipe":          `pg_dump --schema-only "$SRC" | grep -v OWNER >x`,
		"pgschema pipe": `tool pgschema dump --source "$SOURCE" --section indexes | awk '/PRIMARY/' >pk`,
		"variable tool": `"$PGSCHEMA" filter <in | sed 's/a/b/'`,
		"subst":         `log "found $(pgschema dump --section constraints | grep -c VALIDATE) keys"`,
		"procsub":       `while read -r l; do :; done < <(pg_dump -s db | grep '^CREATE')`,
		"file":          `grep -E '^ALTER TABLE .* VALIDATE CONSTRAINT .*;$' "$STATE_DIR/constraints.sql" >"$STATE_DIR/validate.sql" || true`,
		"redirect in":   `sed -n 1p < "$STATE_DIR/pre-data.sql"`,
		"multi-line": `split() {
  awk -v pk="$2" '
    /(^|\n)(CREATE|ALTER) / { print > pk }' \
    "$1.sql"
}`,
		"cat":       `cat "$d/indexes.sql" | grep -c INDEX`,
		"variable":  "f=$STATE_DIR/schema.sql\ngrep -c TABLE \"$f\"",
		"tool file": "pgschema dump --source \"$S\" >\"$W/schema.txt\"\nn=$(grep -c TABLE \"$W/schema.txt\")",
		"after or":  `true || pgschema roles | grep CREATE`,
		"function":  "count() {\n  grep -c \"$2\" \"$1\"\n}\ncount \"$STATE_DIR/indexes.sql\" INDEX",
	}
	for name, src := range bad {
		if len(sqlTextProblems(src)) == 0 {
			t.Errorf("%s: not caught:\n%s", name, src)
		}
	}
	good := []string{
		`grep -c '^WARNING: ' "$STATE_DIR/check.txt" || true`,
		`log "verify: $(sed -n 's/^pgverify: changes mode: //p' "$STATE_DIR/verify.log")"`,
		`pgschema dump --source "$S" --section indexes >"$D/indexes.sql" || die "pgschema failed" | grep x`,
		`pgtrig status --json | sed -n 's/.*"rows_waiting":\([0-9]*\).*/\1/p'`,
		`-h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;`,
		"cat <<EOF | grep -c x\nSELECT 1 FROM a.sql\nEOF",
		`psql -X -f "$STATE_DIR/validate.sql" >/dev/null 2>&1 && tail -n 5 "$STATE_DIR/copy.log" | grep -v '^$'`,
		`echo "# pgschema dump | grep x" # pg_dump | sed`,
		"warn() {\n  grep -A1 '^WARNING: ' \"$1\" | sed \"s/^/x: /\" >&2\n}\nwarn \"$STATE_DIR/check.txt\"",
	}
	for _, src := range good {
		if p := sqlTextProblems(src); len(p) > 0 {
			t.Errorf("flagged wrongly: %v\n%s", p, src)
		}
	}
}

var (
	textTools    = map[string]bool{"awk": true, "gawk": true, "mawk": true, "nawk": true, "sed": true, "grep": true, "egrep": true, "fgrep": true, "perl": true}
	sqlProducers = map[string]bool{"pg_dump": true, "pg_dumpall": true, "pg_restore": true, "pgschema": true}
	// prefixes skipped before a command's program: keywords and the scripts' wrappers
	// (logged_tool takes a log file first).
	cmdPrefixes = map[string]int{"tool": 0, "logged_tool": 1, "exec": 0, "command": 0, "time": 0, "env": 0, "setsid": 0, "nohup": 0,
		"if": 0, "then": 0, "else": 0, "elif": 0, "do": 0, "while": 0, "until": 0, "!": 0, "{": 0, "(": 0}
	assignRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
)

// shCmd is one simple command of a script: its words with the quotes removed.
type shCmd struct {
	words []string
	line  int
}

// program is the command's program (after assignments and wrappers), as a lower-case name: a
// path's base name, or the name of the variable that holds it ("$PGSCHEMA" -> "pgschema").
func (c shCmd) program() string {
	w := c.words
	for len(w) > 0 {
		if assignRE.MatchString(w[0]) {
			w = w[1:]
			continue
		}
		if n, ok := cmdPrefixes[w[0]]; ok && len(w) > n {
			w = w[1+n:]
			continue
		}
		break
	}
	if len(w) == 0 {
		return ""
	}
	p := strings.Trim(w[0], "${}")
	return strings.ToLower(filepath.Base(p))
}

// redirects returns the targets of the command's > and >> redirections, and of its < one.
func (c shCmd) redirects() (out, in []string) {
	for i := 0; i+1 < len(c.words); i++ {
		switch c.words[i] {
		case ">", ">>":
			out = append(out, c.words[i+1])
		case "<":
			in = append(in, c.words[i+1])
		}
	}
	return out, in
}

// sqlTextProblems lists where a script hands SQL to a text tool, as "line: what".
func sqlTextProblems(src string) []string {
	pipes := parseShell(src)
	sqlFiles := map[string]bool{} // files written from a SQL tool's output
	sqlVars := []string{}         // variables assigned a .sql name
	for _, p := range pipes {
		for _, c := range p {
			if sqlProducers[c.program()] {
				out, _ := c.redirects()
				for _, o := range out {
					sqlFiles[o] = true
				}
			}
			for _, w := range c.words {
				if m := assignRE.FindString(w); m != "" && isSQLName(w[len(m):]) {
					sqlVars = append(sqlVars, strings.TrimSuffix(m, "="))
				}
			}
		}
	}
	isSQL := func(w string) bool {
		if isSQLName(w) || sqlFiles[w] {
			return true
		}
		for _, v := range sqlVars {
			if strings.Contains(w, "$"+v) || strings.Contains(w, "${"+v+"}") {
				return true
			}
		}
		return false
	}
	var problems []string
	textFuncs := textFunctions(src, pipes)
	for _, p := range pipes {
		for _, c := range p {
			if f := c.program(); textFuncs[f] {
				for _, w := range c.words[1:] {
					if isSQL(w) {
						problems = append(problems, fmt.Sprintf("%d: %s, which runs a text tool over its arguments, gets SQL file %s", c.line, f, w))
						break
					}
				}
			}
		}
	}
	for _, p := range pipes {
		fed := "" // what feeds SQL into the pipeline so far
		for _, c := range p {
			prog := c.program()
			if textTools[prog] {
				if fed != "" {
					problems = append(problems, fmt.Sprintf("%d: %s output piped through %s", c.line, fed, prog))
				}
				for _, w := range c.words[1:] {
					if isSQL(w) && !slices.Contains(mustOut(c), w) {
						problems = append(problems, fmt.Sprintf("%d: %s reads SQL file %s", c.line, prog, w))
						break
					}
				}
				continue
			}
			if sqlProducers[prog] {
				fed = prog
				continue
			}
			_, in := c.redirects()
			for _, w := range append(in, c.words...) {
				if isSQL(w) && !slices.Contains(mustOut(c), w) && fed == "" {
					fed = "the SQL file " + w
				}
			}
		}
	}
	return problems
}

var (
	funcStartRE  = regexp.MustCompile(`^(\s*)(?:function\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*\(\)\s*\{`)
	positionalRE = regexp.MustCompile(`\$\{?[1-9@*]`)
)

// textFunctions returns the shell functions that run a text tool over one of their positional
// parameters ($1, "$@", ...), so that a call passing a SQL file counts as the text tool reading it.
func textFunctions(src string, pipes [][]shCmd) map[string]bool {
	type span struct {
		name       string
		start, end int
	}
	var funcs []span
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		m := funcStartRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		end := i + 1
		if !strings.HasSuffix(strings.TrimSpace(l), "}") {
			for end = i + 1; end < len(lines) && strings.TrimRight(lines[end], " \t") != m[1]+"}"; end++ {
			}
			end++
		}
		funcs = append(funcs, span{m[2], i + 1, end})
	}
	out := map[string]bool{}
	for _, p := range pipes {
		for _, c := range p {
			if !textTools[c.program()] {
				continue
			}
			for _, f := range funcs {
				if c.line < f.start || c.line > f.end {
					continue
				}
				for _, w := range c.words[1:] {
					if positionalRE.MatchString(w) {
						out[f.name] = true
					}
				}
			}
		}
	}
	return out
}

// mustOut is the command's output redirection targets (a SQL file written by grep is fine
// only if grep read no SQL, which the other checks decide).
func mustOut(c shCmd) []string { out, _ := c.redirects(); return out }

func isSQLName(w string) bool {
	w = strings.TrimRight(w, `"'`)
	return strings.HasSuffix(w, ".sql") || strings.HasSuffix(w, ".dump")
}

// parseShell splits a bash script into pipelines of simple commands, closely enough for the
// check: quotes (across lines), backslash-newline, comments, heredoc bodies (skipped), and the
// commands inside $(...), `...`, <(...) and >(...) as pipelines of their own.
func parseShell(src string) [][]shCmd {
	var out [][]shCmd
	var pipe []shCmd
	var cmd shCmd
	var word strings.Builder
	inWord := false
	line := 1
	var heredocs []string
	endWord := func() {
		if inWord {
			if cmd.line == 0 {
				cmd.line = line
			}
			cmd.words = append(cmd.words, word.String())
			word.Reset()
			inWord = false
		}
	}
	endCmd := func() {
		endWord()
		if len(cmd.words) > 0 {
			pipe = append(pipe, cmd)
		}
		cmd = shCmd{}
	}
	endPipe := func() {
		endCmd()
		if len(pipe) > 0 {
			out = append(out, pipe)
		}
		pipe = nil
	}
	nested := func(i int, open, close byte) int { // i at the opening char; returns the index after the closing one
		body, end := matchClose(src, i+1, open, close)
		for _, p := range parseShell(body) {
			for k := range p {
				p[k].line += line - 1
			}
			out = append(out, p)
		}
		line += strings.Count(body, "\n")
		word.WriteString("$(...)")
		inWord = true
		return end
	}
	for i := 0; i < len(src); {
		ch := src[i]
		switch {
		case ch == '\\' && i+1 < len(src) && src[i+1] == '\n':
			i += 2
			line++
		case ch == '\\' && i+1 < len(src):
			word.WriteByte(src[i+1])
			inWord = true
			i += 2
		case ch == '\'':
			j := strings.IndexByte(src[i+1:], '\'')
			if j < 0 {
				j = len(src) - i - 1
			}
			word.WriteString(src[i+1 : i+1+j])
			line += strings.Count(src[i+1:i+1+j], "\n")
			inWord = true
			i += j + 2
		case ch == '"':
			i++
			for i < len(src) && src[i] != '"' {
				switch {
				case src[i] == '\\' && i+1 < len(src):
					word.WriteByte(src[i+1])
					i += 2
				case src[i] == '$' && i+1 < len(src) && src[i+1] == '(':
					i = nested(i+1, '(', ')')
				case src[i] == '`':
					i = nested(i, '`', '`')
				default:
					if src[i] == '\n' {
						line++
					}
					word.WriteByte(src[i])
					i++
				}
			}
			inWord = true
			i++
		case ch == '$' && i+1 < len(src) && src[i+1] == '(':
			i = nested(i+1, '(', ')')
		case ch == '`':
			i = nested(i, '`', '`')
		case (ch == '<' || ch == '>') && i+1 < len(src) && src[i+1] == '(':
			endWord()
			i = nested(i+1, '(', ')')
		case ch == '<' && strings.HasPrefix(src[i:], "<<") && !strings.HasPrefix(src[i:], "<<<"):
			endWord()
			j := i + 2
			if j < len(src) && src[j] == '-' {
				j++
			}
			k := j
			for k < len(src) && !strings.ContainsRune(" \t\n;|&<>", rune(src[k])) {
				k++
			}
			heredocs = append(heredocs, strings.Trim(src[j:k], `'"`))
			i = k
		case ch == '>' || ch == '<':
			endWord()
			op := string(ch)
			i++
			if ch == '>' && i < len(src) && src[i] == '>' {
				op, i = ">>", i+1
			}
			if i < len(src) && src[i] == '&' { // >&2, 2>&1: a descriptor, not a file
				j := i + 1
				for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '-') {
					j++
				}
				i = j
				continue
			}
			cmd.words = append(cmd.words, op)
		case ch == '#' && !inWord:
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case ch == '\n':
			endPipe()
			line++
			i++
			for _, d := range heredocs { // skip the heredoc bodies that start after this line
				for i < len(src) {
					e := strings.IndexByte(src[i:], '\n')
					if e < 0 {
						e = len(src) - i
					}
					l := strings.TrimLeft(src[i:i+e], "\t")
					i += e + 1
					line++
					if l == d {
						break
					}
				}
			}
			heredocs = nil
		case ch == '|' && !strings.HasPrefix(src[i:], "||"):
			endCmd()
			i++
		case ch == '|' || ch == '&' || ch == ';':
			endPipe()
			for i < len(src) && (src[i] == '|' || src[i] == '&' || src[i] == ';') {
				i++
			}
		case ch == ' ' || ch == '\t' || ch == '(' || ch == ')':
			endWord()
			i++
		default:
			word.WriteByte(ch)
			inWord = true
			i++
		}
	}
	endPipe()
	return out
}

// matchClose returns the text from i up to the close byte that matches an already opened one,
// skipping quoted text and nested pairs, and the index after that close byte.
func matchClose(src string, i int, open, close byte) (string, int) {
	depth := 1
	start := i
	for i < len(src) {
		switch c := src[i]; {
		case c == '\\':
			i++
		case c == '\'' && open != '`':
			if j := strings.IndexByte(src[i+1:], '\''); j >= 0 {
				i += j + 1
			}
		case c == close && (open != close || depth == 1):
			depth--
			if depth == 0 {
				return src[start:i], i + 1
			}
		case c == open && open != close:
			depth++
		}
		i++
	}
	return src[start:], len(src)
}
