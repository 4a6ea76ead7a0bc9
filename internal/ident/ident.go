// Package ident quotes SQL identifiers and names tables, and holds the one default name of
// pgferry's own schemas.
package ident

import (
	"fmt"
	"strings"
)

// DefaultSchema is the name of pgferry's capture schema on the source and of its state schema on
// the target when no flag or option names others.
const DefaultSchema = "pgferry"

// Quote returns name as a double-quoted SQL identifier.
func Quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// QuoteList quotes each name and joins them with ", ".
func QuoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = Quote(n)
	}
	return strings.Join(q, ", ")
}

// Literal returns s as a standard-conforming SQL string literal.
func Literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// Table names a table by schema and name.
type Table struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
}

// String returns the table's quoted, schema-qualified name for SQL.
func (t Table) String() string { return Quote(t.Schema) + "." + Quote(t.Name) }

// Key returns the unquoted "schema.name" used in stream headers, records and state rows.
func (t Table) Key() string { return t.Schema + "." + t.Name }

// ParseKey splits an unquoted "schema.name" (the schema may not contain a dot; the name may).
// A name without a schema is taken to be in public.
func ParseKey(s string) (Table, error) {
	if s == "" {
		return Table{}, fmt.Errorf("empty table name")
	}
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return Table{Schema: "public", Name: s}, nil
	}
	if i == 0 || i == len(s)-1 {
		return Table{}, fmt.Errorf("bad table name %q: want schema.name", s)
	}
	return Table{Schema: s[:i], Name: s[i+1:]}, nil
}
