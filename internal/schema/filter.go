package schema

import (
	"fmt"
	"io"
	"strings"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/sqlstmt"
)

// Options select what a filtered dump keeps.
type Options struct {
	Section       string // one of SectionNames; "" means all
	Filter        catalog.Filter
	ExcludeTypes  []string // pg_dump header types, e.g. "TRIGGER", "FK CONSTRAINT", "COMMENT"
	NoOwner       bool
	NoACL         bool
	NoComments    bool
	NotValid      bool
	Keys          string          // "all", "primary" or "secondary": which part of the indexes section
	KeyIndexes    map[string]bool // more index names --keys counts as keys (those capture finds rows by)
	Validations   string          // "include" (or ""), "omit" or "only": what to write of VALIDATE CONSTRAINT
	CaptureSchema string
	Warn          io.Writer // notes about rewritten statements; nil discards them
}

// FilterScript writes the parts of sc that o selects. Session settings and psql meta-commands
// are always written, so every section runs under the settings pg_dump chose.
func FilterScript(sc *Script, o Options, w io.Writer) error {
	body, insertAt, validates, err := filterBody(sc, o)
	if err != nil {
		return err
	}
	switch o.Validations {
	case "only":
		if len(validates) > 0 {
			body = strings.Join(validates, "\n") + "\n"
		} else {
			body = ""
		}
	case "omit":
	default:
		if len(validates) > 0 {
			block := "--\n-- pgschema: validate the foreign keys added NOT VALID above (does not block writes)\n--\n\n" + strings.Join(validates, "\n") + "\n\n"
			body = body[:insertAt] + block + body[insertAt:]
		}
	}
	_, err = io.WriteString(w, body)
	return err
}

// filterBody writes the selected statements and returns them with the offset after the last
// one and the VALIDATE CONSTRAINT statements that complete foreign keys added NOT VALID (with
// --validations omit or only, also those of the input, which are then left out of the text).
func filterBody(sc *Script, o Options) (string, int, []string, error) {
	secs, err := sectionSet(o.Section)
	if err != nil {
		return "", 0, nil, err
	}
	if o.CaptureSchema == "" {
		o.CaptureSchema = ident.DefaultSchema
	}
	sections, err := classify(sc, o.Warn)
	if err != nil {
		return "", 0, nil, err
	}
	fc := newFilterCtx(sc)
	for n := range o.KeyIndexes {
		fc.keys[n] = true
	}
	if tables := fc.tables(); len(tables) > 0 { // a script of indexes only creates no table to check the patterns on
		if o.Filter, err = o.Filter.Resolve(tables); err != nil {
			return "", 0, nil, err
		}
	}
	var out strings.Builder
	insertAt := -1 // where VALIDATE statements go: after the last written statement
	var validates []string
	for _, e := range sc.Entries {
		keep := !e.HasHeader || secs[sections[e]] && o.keepEntry(e, fc) && !isCaptureEntry(e, o.CaptureSchema)
		if keep && e.HasHeader && sections[e] == Indexes && (o.Keys == "primary" || o.Keys == "secondary") {
			keep = fc.isKey(e) == (o.Keys == "primary")
		}
		if keep {
			out.WriteString(e.Lead)
		}
		for _, c := range e.Chunks {
			if c.Global() {
				out.WriteString(c.Text())
				continue
			}
			if !keep || !o.keepChunk(e, c, secs, fc) {
				continue
			}
			if c.Stmt.Kind == sqlstmt.KValidate && o.Validations != "" && o.Validations != "include" {
				validates = append(validates, c.Piece.Text)
				continue
			}
			text := c.Piece.Text
			if c.Stmt.Kind == sqlstmt.KRefresh && e.Header.Type == "MATERIALIZED VIEW DATA" && fc.concurrent[c.Stmt.Table] {
				text = concurrentRefresh(c.Stmt.Table)
			}
			if o.NotValid && c.Stmt.Kind == sqlstmt.KForeignKey {
				var v string
				if text, v = o.notValid(c); v != "" {
					validates = append(validates, v)
				}
			}
			out.WriteString(text)
			out.WriteString(c.Trail)
			insertAt = out.Len()
		}
	}
	if insertAt < 0 {
		insertAt = out.Len()
	}
	return out.String(), insertAt, validates, nil
}

// keepChunk applies the filters to one statement of a kept entry: statements outside any
// pg_dump header are filtered one by one, and --no-owner drops ALTER ... OWNER TO.
func (o Options) keepChunk(e *Entry, c *Chunk, secs map[Section]bool, fc *filterCtx) bool {
	if !e.HasHeader && (!secs[chunkSection(c)] || !o.keepStmt(c.Stmt, fc) || isCaptureStmt(c.Stmt, o.CaptureSchema)) {
		return false
	}
	return !(o.NoOwner && c.Stmt.Kind == sqlstmt.KOwner)
}

// filterCtx holds what filtering learns from the whole script.
type filterCtx struct {
	indexTable map[string]ident.Table      // index name -> its table, for COMMENT ON INDEX and ALTER INDEX
	parent     map[ident.Table]ident.Table // partition -> its parent
	keys       map[string]bool             // names of PRIMARY KEY constraints (and so of their indexes), and Options.KeyIndexes
	concurrent map[ident.Table]bool        // materialized views with a unique index over plain columns
	created    []ident.Table               // the tables the script creates
}

func newFilterCtx(sc *Script) *filterCtx {
	fc := &filterCtx{indexTable: map[string]ident.Table{}, parent: map[ident.Table]ident.Table{}, keys: map[string]bool{}, concurrent: map[ident.Table]bool{}}
	for _, e := range sc.Entries {
		for _, c := range e.Chunks {
			if c.Stmt.Kind == sqlstmt.KIndexConstraint && c.Stmt.Primary {
				fc.keys[c.Stmt.Name] = true
			}
			if c.Stmt.Kind == sqlstmt.KIndex && c.Stmt.Name != "" {
				fc.indexTable[c.Stmt.Name] = c.Stmt.Table
			}
			if c.Stmt.Kind == sqlstmt.KIndex && c.Stmt.Unique && c.Stmt.PlainKey {
				fc.concurrent[c.Stmt.Table] = true
			}
			if c.Stmt.Parent.Name != "" && (c.Stmt.Kind == sqlstmt.KCreateTable || c.Stmt.Kind == sqlstmt.KAlterTable) {
				fc.parent[c.Stmt.Table] = c.Stmt.Parent
			}
			if c.Stmt.Kind == sqlstmt.KCreateTable && (!e.HasHeader || e.Header.Type == "TABLE") {
				fc.created = append(fc.created, c.Stmt.Table)
			}
		}
	}
	return fc
}

// tables lists the tables the script creates, each partition with its root, for Filter.Resolve.
func (fc *filterCtx) tables() []*catalog.Table {
	out := make([]*catalog.Table, 0, len(fc.created))
	for _, t := range fc.created {
		ct := &catalog.Table{Table: t}
		if r := fc.root(t); r != t {
			ct.Partition, ct.Root = true, &r
		}
		out = append(out, ct)
	}
	return out
}

// concurrentRefresh refreshes a materialized view that has a unique index over plain columns:
// CONCURRENTLY (its readers are not blocked) when the view is already populated where the
// statement runs, else plainly, the only way to populate it (and the faster one).
func concurrentRefresh(t ident.Table) string {
	name := qualified(t)
	tag := "$pgschema$"
	for i := 1; strings.Contains(name, tag); i++ {
		tag = fmt.Sprintf("$pgschema%d$", i)
	}
	return fmt.Sprintf(`DO %[1]s
BEGIN
  IF (SELECT relispopulated FROM pg_catalog.pg_class WHERE oid = %[2]s::pg_catalog.regclass) THEN
    REFRESH MATERIALIZED VIEW CONCURRENTLY %[3]s;
  ELSE
    REFRESH MATERIALIZED VIEW %[3]s;
  END IF;
END
%[1]s;`, tag, ident.Literal(name), name)
}

// isKey reports whether an indexes-section entry is a key (a primary key, or an index named in
// Options.KeyIndexes), a key's partition index attach or its comment.
func (fc *filterCtx) isKey(e *Entry) bool {
	for _, c := range e.Chunks {
		switch c.Stmt.Kind {
		case sqlstmt.KIndexConstraint:
			return c.Stmt.Primary || fc.keys[c.Stmt.Name]
		case sqlstmt.KIndexAttach, sqlstmt.KIndex:
			return fc.keys[c.Stmt.Name]
		}
	}
	if e.Header.Type == "COMMENT" || e.Header.Type == "SECURITY LABEL" {
		n := strings.ReplaceAll(e.Header.Name, `"`, "")
		for _, p := range []string{"CONSTRAINT ", "INDEX "} {
			if rest, ok := strings.CutPrefix(n, p); ok {
				rest, _, _ = strings.Cut(rest, " ON ")
				return fc.keys[rest]
			}
		}
	}
	return false
}

// root is the partition root of t (t itself when it is no partition).
func (fc *filterCtx) root(t ident.Table) ident.Table {
	for i := 0; i < 100; i++ {
		p, ok := fc.parent[t]
		if !ok {
			break
		}
		t = p
	}
	return t
}

// matchTable applies the table filters; a partition is selected when its root is.
func (o Options) matchTable(t ident.Table, fc *filterCtx) bool {
	r := fc.root(t)
	return o.Filter.MatchName(r.Schema, r.Name)
}

// keepEntry applies the name filters, --exclude-type, --no-acl and --no-comments to an entry.
func (o Options) keepEntry(e *Entry, fc *filterCtx) bool {
	h := e.Header
	for _, t := range o.ExcludeTypes {
		if strings.EqualFold(strings.TrimSpace(t), h.Type) {
			return false
		}
	}
	if o.NoACL && (h.Type == "ACL" || h.Type == "DEFAULT ACL") {
		return false
	}
	if o.NoComments && h.Type == "COMMENT" {
		return false
	}
	if h.Type == "TABLE DATA" || h.Type == "SEQUENCE SET" || h.Type == "MATERIALIZED VIEW DATA" {
		r := fc.root(ident.Table{Schema: h.Schema, Name: h.Name})
		if o.Filter.ExcludesData(r.Schema, r.Name) {
			return false
		}
	}
	schema := h.Schema
	if schema == "-" {
		schema = ""
	}
	if h.Type == "SCHEMA" {
		schema = h.Name
	}
	if n := strings.ReplaceAll(h.Name, `"`, ""); strings.HasPrefix(n, "SCHEMA ") && schema == "" {
		schema = strings.TrimPrefix(n, "SCHEMA ")
	}
	t, ok := entryTable(e, fc.indexTable)
	if ok {
		if t.Schema == "" {
			t.Schema = schema
		}
		return o.matchTable(t, fc)
	}
	if schema != "" {
		return o.Filter.MatchSchema(schema)
	}
	return true
}

// keepStmt applies the filters to a statement outside any pg_dump header.
func (o Options) keepStmt(st sqlstmt.Stmt, fc *filterCtx) bool {
	if o.NoACL && st.Kind == sqlstmt.KACL || o.NoComments && st.Kind == sqlstmt.KComment {
		return false
	}
	t := st.Table
	if st.Kind == sqlstmt.KAlterIndex || st.Kind == sqlstmt.KIndexAttach || st.Kind == sqlstmt.KComment && st.CommentOn == "index" {
		t = fc.indexTable[st.Name]
	}
	if t.Name == "" {
		return true
	}
	if t.Schema == "" {
		t.Schema = "public"
	}
	return o.matchTable(t, fc)
}

// entryTable is the table an entry belongs to, when it belongs to one.
func entryTable(e *Entry, indexTable map[string]ident.Table) (ident.Table, bool) {
	h := e.Header
	switch h.Type {
	case "TABLE", "VIEW", "MATERIALIZED VIEW", "FOREIGN TABLE", "TABLE ATTACH", "TABLE DATA", "MATERIALIZED VIEW DATA":
		return ident.Table{Schema: h.Schema, Name: h.Name}, true
	case "COMMENT", "ACL", "SECURITY LABEL":
		for _, p := range []string{"TABLE ", "VIEW ", "MATERIALIZED VIEW ", "FOREIGN TABLE "} {
			if strings.HasPrefix(h.Name, p) {
				return ident.Table{Schema: h.Schema, Name: unq(strings.TrimPrefix(h.Name, p))}, true
			}
		}
		if strings.HasPrefix(h.Name, "COLUMN ") {
			n := strings.TrimPrefix(h.Name, "COLUMN ")
			if i := strings.LastIndexByte(n, '.'); i > 0 {
				return ident.Table{Schema: h.Schema, Name: unq(n[:i])}, true
			}
		}
		if strings.HasPrefix(h.Name, "INDEX ") {
			if t, ok := indexTable[unq(strings.TrimPrefix(h.Name, "INDEX "))]; ok {
				return t, true
			}
		}
		if i := strings.LastIndex(h.Name, " ON "); i > 0 && !strings.Contains(h.Name, " ON DOMAIN ") {
			return ident.Table{Schema: h.Schema, Name: unq(h.Name[i+4:])}, true
		}
		return ident.Table{}, false
	}
	for _, c := range e.Chunks {
		switch c.Stmt.Kind {
		case sqlstmt.KIndex, sqlstmt.KIndexConstraint, sqlstmt.KForeignKey, sqlstmt.KCheck, sqlstmt.KValidate, sqlstmt.KTrigger, sqlstmt.KRule, sqlstmt.KAlterTable, sqlstmt.KSequenceOwned, sqlstmt.KCreateTable,
			sqlstmt.KRowSecurity, sqlstmt.KPolicy, sqlstmt.KRefresh:
			if c.Stmt.Table.Name != "" {
				return c.Stmt.Table, true
			}
		case sqlstmt.KIndexAttach, sqlstmt.KAlterIndex:
			if t, ok := indexTable[c.Stmt.Name]; ok {
				return t, true
			}
		}
	}
	return ident.Table{}, false
}

func unq(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return s
}

// notValid rewrites ALTER TABLE ONLY ... ADD CONSTRAINT ... FOREIGN KEY ...; to add the key
// NOT VALID and returns the VALIDATE CONSTRAINT statement that completes it.
func (o Options) notValid(c *Chunk) (string, string) {
	text := c.Piece.Text
	body := strings.TrimSuffix(text, ";")
	if strings.HasSuffix(strings.ToUpper(strings.TrimSpace(body)), "NOT VALID") {
		return text, "" // already NOT VALID: pg_dump keeps it that way, and so does the target
	}
	if !c.Stmt.Only {
		// pg_dump writes ALTER TABLE without ONLY for keys on partitioned tables, which
		// PostgreSQL before 18 cannot add NOT VALID.
		if o.Warn != nil {
			fmt.Fprintf(o.Warn, "pgschema: note: line %d: foreign key %s on %s is added valid: PostgreSQL cannot add foreign keys on partitioned tables NOT VALID\n",
				c.Piece.Line, c.Stmt.Name, c.Stmt.Table.Key())
		}
		return text, ""
	}
	return body + " NOT VALID;", fmt.Sprintf("ALTER TABLE ONLY %s VALIDATE CONSTRAINT %s;", qualified(c.Stmt.Table), ident.Quote(c.Stmt.Name))
}

// qualified quotes a table name, schema-qualified when the schema is known.
func qualified(t ident.Table) string {
	if t.Schema == "" {
		return ident.Quote(t.Name)
	}
	return t.String()
}
