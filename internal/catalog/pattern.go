package catalog

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pgferry/pgferry/internal/ident"
)

// PatternError is a filter pattern that cannot be used.
type PatternError struct {
	Option  string // e.g. "-t"
	Pattern string
	Reason  string
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("bad pattern %s %s: %s", e.Option, shellWord(e.Pattern), e.Reason)
}

// never matches nothing: it stands for a pattern that does not compile.
var never = regexp.MustCompile(`[^\x00-\x{10FFFF}]`)

// namePattern matches one name: a pattern as pg_dump and psql read it (docs: psql, "Patterns").
type namePattern struct{ re *regexp.Regexp }

func (p namePattern) match(s string) bool { return p.re.MatchString(s) }

// relPattern matches a table: "name" (in any schema, see docs/filters.md) or "schema.name".
type relPattern struct {
	schema *namePattern // nil: any schema
	name   namePattern
}

func (p relPattern) match(t ident.Table) bool {
	return (p.schema == nil || p.schema.match(t.Schema)) && p.name.match(t.Name)
}

// splitPattern turns a pattern into one anchored regular expression per dot-separated part, as
// PostgreSQL's processSQLNamePattern does: outside double quotes letters are folded to lower
// case, * is any sequence, ? any one character, . separates the parts and $ is literal (other
// regular-expression syntax, such as [0-9], keeps its meaning); inside double quotes every
// character is literal and "" is one double quote.
func splitPattern(p string) []string {
	var parts []string
	var cur strings.Builder
	inQuotes := false
	for i := 0; i < len(p); i++ {
		ch := p[i]
		switch {
		case ch == '"':
			if inQuotes && i+1 < len(p) && p[i+1] == '"' {
				cur.WriteString(`"`)
				i++
			} else {
				inQuotes = !inQuotes
			}
		case inQuotes:
			if strings.IndexByte(`\.+*?()|[]{}^$`, ch) >= 0 {
				cur.WriteByte('\\')
			}
			cur.WriteByte(ch)
		case ch == '.':
			parts = append(parts, cur.String())
			cur.Reset()
		case ch == '*':
			cur.WriteString(".*")
		case ch == '?':
			cur.WriteString(".")
		case ch == '$':
			cur.WriteString(`\$`)
		case ch >= 'A' && ch <= 'Z':
			cur.WriteByte(ch + 'a' - 'A')
		default:
			cur.WriteByte(ch)
		}
	}
	return append(parts, cur.String())
}

func compileName(option, pattern, part string) (namePattern, error) {
	re, err := regexp.Compile("^(?:" + part + ")$")
	if err != nil {
		return namePattern{}, &PatternError{Option: option, Pattern: pattern, Reason: err.Error()}
	}
	return namePattern{re}, nil
}

// compileSchemaPattern compiles a -n or -N pattern: one name, no dot.
func compileSchemaPattern(option, pattern string) (namePattern, error) {
	parts := splitPattern(pattern)
	if len(parts) > 1 {
		return namePattern{}, &PatternError{Option: option, Pattern: pattern, Reason: `a schema pattern has no dot (quote a dot that is part of the name: '"a.b"')`}
	}
	return compileName(option, pattern, parts[0])
}

// compileRelPattern compiles a -t, -T or --exclude-table-data pattern: "name" or "schema.name".
func compileRelPattern(option, pattern string) (relPattern, error) {
	parts := splitPattern(pattern)
	if len(parts) > 2 {
		return relPattern{}, &PatternError{Option: option, Pattern: pattern, Reason: `too many dotted names: write schema.table (quote a dot that is part of a name: '"a.b"')`}
	}
	name, err := compileName(option, pattern, parts[len(parts)-1])
	if err != nil {
		return relPattern{}, err
	}
	rp := relPattern{name: name}
	if len(parts) == 2 {
		s, err := compileName(option, pattern, parts[0])
		if err != nil {
			return relPattern{}, err
		}
		rp.schema = &s
	}
	return rp, nil
}

// foldsUpper reports whether a pattern has an upper-case letter outside double quotes, which
// folding turns to lower case.
func foldsUpper(p string) bool {
	inQuotes := false
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '"':
			inQuotes = !inQuotes
		case !inQuotes && c >= 'A' && c <= 'Z':
			return true
		}
	}
	return false
}

// shellWord quotes s for a message the operator can paste into a shell.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
