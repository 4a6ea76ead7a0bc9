// Package sqlstmt classifies the statements of a pg_dump-style script: what each does and to which table.
package sqlstmt

import (
	"strings"

	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/sqllex"
)

// Kind is what a statement does, as far as sections and parallel apply care.
type Kind int

// Statement kinds.
const (
	KOther           Kind = iota
	KSet                  // SET, RESET, SELECT pg_catalog.set_config(...): session settings
	KIndex                // CREATE INDEX
	KIndexConstraint      // ALTER TABLE ... ADD CONSTRAINT ... PRIMARY KEY | UNIQUE | EXCLUDE
	KForeignKey           // ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY
	KCheck                // ALTER TABLE ... ADD CONSTRAINT ... CHECK
	KValidate             // ALTER TABLE ... VALIDATE CONSTRAINT
	KIndexAttach          // ALTER INDEX ... ATTACH PARTITION
	KAlterTable           // any other ALTER TABLE
	KAlterIndex           // any other ALTER INDEX
	KTrigger              // CREATE [CONSTRAINT] TRIGGER
	KRule                 // CREATE [OR REPLACE] RULE
	KEventTrigger         // CREATE EVENT TRIGGER
	KOwner                // ALTER ... OWNER TO
	KACL                  // GRANT, REVOKE
	KComment              // COMMENT ON
	KTxn                  // BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, SAVEPOINT...
	KCreateTable          // CREATE TABLE (Parent set for PARTITION OF)
	KSequenceOwned        // ALTER SEQUENCE ... OWNED BY table.column (Table is that table)
	KTriggerState         // ALTER TABLE ... ENABLE [ALWAYS | REPLICA] | DISABLE TRIGGER name
	KRowSecurity          // ALTER TABLE ... ENABLE | DISABLE ROW LEVEL SECURITY (FORCE stays KAlterTable)
	KPolicy               // CREATE POLICY name ON table
	KRefresh              // REFRESH MATERIALIZED VIEW [CONCURRENTLY] name
)

var kindNames = map[Kind]string{
	KOther: "other", KSet: "set", KIndex: "index", KIndexConstraint: "index constraint", KForeignKey: "foreign key",
	KCheck: "check constraint", KValidate: "validate constraint", KIndexAttach: "index attach", KAlterTable: "alter table",
	KAlterIndex: "alter index", KTrigger: "trigger", KRule: "rule", KEventTrigger: "event trigger", KOwner: "owner",
	KACL: "acl", KComment: "comment", KTxn: "transaction control", KCreateTable: "create table", KSequenceOwned: "sequence owned by",
	KTriggerState: "trigger state", KRowSecurity: "row security", KPolicy: "policy", KRefresh: "refresh materialized view",
}

func (k Kind) String() string { return kindNames[k] }

// Stmt is what pgschema understands of one statement.
type Stmt struct {
	Kind       Kind
	Name       string      // object created or changed: index, constraint, trigger or rule name (unquoted)
	Table      ident.Table // the table it is on, when there is one
	RefTable   ident.Table // FOREIGN KEY ... REFERENCES table
	Only       bool        // ALTER TABLE ONLY
	Primary    bool        // ADD CONSTRAINT ... PRIMARY KEY
	Function   ident.Table // a trigger's EXECUTE FUNCTION name
	CommentOn  string      // COMMENT ON <what>: the object type words, lower case
	AttachName ident.Table // ALTER INDEX ... ATTACH PARTITION <index>
	Parent     ident.Table // ALTER TABLE <parent> ATTACH PARTITION <Table>, CREATE TABLE <Table> PARTITION OF <parent>
	Unique     bool        // CREATE UNIQUE INDEX
	PlainKey   bool        // CREATE INDEX over plain columns only (no expression) and without WHERE
	Columns    []string    // key columns of CREATE INDEX or ADD PRIMARY KEY | UNIQUE (unquoted; nil when one is an expression)
	Owner      string      // ALTER ... OWNER TO <role>: the role (unquoted)
}

// words is a cursor over a statement's significant tokens.
type words struct {
	t []sqllex.Token
	i int
}

func (w *words) peek(n int) string {
	if w.i+n < len(w.t) && w.t[w.i+n].Kind == sqllex.TWord {
		return strings.ToLower(w.t[w.i+n].Text)
	}
	return ""
}

// accept consumes the given keywords in order if they are all next.
func (w *words) accept(kw ...string) bool {
	for j, k := range kw {
		if w.peek(j) != k {
			return false
		}
	}
	w.i += len(kw)
	return true
}

// skipTo advances past the next occurrence of keyword kw.
func (w *words) skipTo(kw string) bool {
	for ; w.i < len(w.t); w.i++ {
		if w.peek(0) == kw {
			w.i++
			return true
		}
	}
	return false
}

// name reads a possibly qualified name: part(.part)*. It returns the parts unquoted.
func (w *words) name() []string {
	var parts []string
	for w.i < len(w.t) {
		t := w.t[w.i]
		switch t.Kind {
		case sqllex.TWord:
			parts = append(parts, strings.ToLower(t.Text))
		case sqllex.TQuotedIdent:
			parts = append(parts, unquoteIdent(t.Text))
		default:
			return parts
		}
		w.i++
		if w.i < len(w.t) && w.t[w.i].Kind == sqllex.TPunct && w.t[w.i].Text == "." {
			w.i++
			continue
		}
		return parts
	}
	return parts
}

func (w *words) table() ident.Table {
	p := w.name()
	switch len(p) {
	case 0:
		return ident.Table{}
	case 1:
		return ident.Table{Name: p[0]}
	default:
		return ident.Table{Schema: p[len(p)-2], Name: p[len(p)-1]}
	}
}

func unquoteIdent(s string) string {
	if strings.HasPrefix(s, "U&") || strings.HasPrefix(s, "u&") {
		s = s[2:] // escapes in U&"" identifiers are kept as written
	}
	s = strings.TrimPrefix(s, `"`)
	s = strings.TrimSuffix(s, `"`)
	return strings.ReplaceAll(s, `""`, `"`)
}

// Parse classifies one statement's text.
func Parse(text string) Stmt {
	w := &words{t: sqllex.Significant(text)}
	var st Stmt
	switch {
	case w.accept("set"), w.accept("reset"):
		st.Kind = KSet
	case w.peek(0) == "select" && w.peek(1) == "pg_catalog" && w.peek(3) == "set_config", w.peek(0) == "select" && w.peek(1) == "set_config":
		st.Kind = KSet
	case w.accept("grant"), w.accept("revoke"):
		st.Kind = KACL
	case w.accept("comment", "on"):
		w.comment(&st)
	case w.accept("create"):
		w.create(&st)
	case w.accept("refresh", "materialized", "view"):
		st.Kind = KRefresh
		w.accept("concurrently")
		st.Table = w.table()
	case w.accept("begin"), w.accept("start", "transaction"), w.accept("commit"), w.accept("end"), w.accept("rollback"),
		w.accept("abort"), w.accept("savepoint"), w.accept("release"), w.accept("prepare", "transaction"):
		st.Kind = KTxn
	case w.accept("alter", "sequence"):
		w.alterSequence(&st)
	case w.peek(0) == "alter" && (w.peek(1) == "table" || w.peek(1) == "foreign" && w.peek(2) == "table"):
		w.alterTable(&st)
	case w.accept("alter", "index"):
		w.alterIndex(&st)
	case w.accept("alter"):
		w.ownerTo(&st)
	}
	return st
}

// comment reads the rest of COMMENT ON ...: what it comments, its name and table.
func (w *words) comment(st *Stmt) {
	st.Kind = KComment
	var what []string
	for w.i < len(w.t) && w.t[w.i].Kind == sqllex.TWord && len(what) < 3 {
		k := w.peek(0)
		if k != "index" && k != "constraint" && k != "trigger" && k != "rule" && k != "event" && k != "table" && k != "schema" && k != "function" && k != "materialized" && k != "view" {
			break
		}
		what = append(what, k)
		w.i++
		if k != "event" && k != "materialized" {
			break
		}
	}
	st.CommentOn = strings.Join(what, " ")
	n := w.name()
	if len(n) > 0 {
		st.Name = n[len(n)-1]
	}
	if st.CommentOn == "index" && len(n) > 1 {
		st.Table = ident.Table{Schema: n[len(n)-2]} // schema of the index; the table is looked up
	}
	if w.accept("on") {
		w.accept("domain")
		st.Table = w.table()
	}
}

// create reads the rest of CREATE [OR REPLACE] ...: tables, indexes, triggers, event triggers,
// policies and rules.
func (w *words) create(st *Stmt) {
	w.accept("or", "replace")
	switch {
	case w.peek(0) == "table" || w.peek(1) == "table" && (w.peek(0) == "unlogged" || w.peek(0) == "foreign"):
		w.accept("unlogged")
		w.accept("foreign")
		w.accept("table")
		w.accept("if", "not", "exists")
		st.Kind = KCreateTable
		st.Table = w.table()
		if w.accept("partition", "of") {
			st.Parent = w.table()
		}
	case w.peek(0) == "unique" || w.peek(0) == "index":
		st.Unique = w.accept("unique")
		w.accept("index")
		w.accept("concurrently")
		w.accept("if", "not", "exists")
		if w.peek(0) != "on" {
			n := w.name()
			if len(n) > 0 {
				st.Name = n[len(n)-1]
			}
		}
		if w.accept("on") {
			st.Kind = KIndex
			st.Only = w.accept("only")
			st.Table = w.table()
			at := w.i
			if w.accept("using") {
				w.name()
			}
			st.Columns, w.i = w.keyColumns(), at
			st.PlainKey = w.plainKey()
		}
	case w.peek(0) == "trigger" || w.peek(0) == "constraint" && w.peek(1) == "trigger":
		w.accept("constraint")
		w.accept("trigger")
		st.Kind = KTrigger
		if n := w.name(); len(n) > 0 {
			st.Name = n[len(n)-1]
		}
		if w.skipTo("on") {
			st.Table = w.table()
		}
		st.Function = w.executeFunction()
	case w.accept("event", "trigger"):
		st.Kind = KEventTrigger
		if n := w.name(); len(n) > 0 {
			st.Name = n[0]
		}
		st.Function = w.executeFunction()
	case w.accept("policy"):
		st.Kind = KPolicy
		if n := w.name(); len(n) > 0 {
			st.Name = n[0]
		}
		if w.accept("on") {
			st.Table = w.table()
		}
	case w.accept("rule"):
		st.Kind = KRule
		if n := w.name(); len(n) > 0 {
			st.Name = n[0]
		}
		if w.skipTo("to") {
			st.Table = w.table()
		}
	}
}

// alterSequence reads the rest of ALTER SEQUENCE: OWNED BY table.column, or OWNER TO.
func (w *words) alterSequence(st *Stmt) {
	w.accept("if", "exists")
	w.name()
	start := w.i
	for w.i < len(w.t) {
		if w.accept("owned", "by") {
			if p := w.name(); len(p) >= 2 {
				st.Kind = KSequenceOwned
				st.Table = ident.Table{Name: p[len(p)-2]}
				if len(p) >= 3 {
					st.Table.Schema = p[len(p)-3]
				}
			}
			break
		}
		w.i++
	}
	w.i = start
	if st.Kind == KOther {
		w.ownerTo(st)
	}
}

// alterTable reads ALTER [FOREIGN] TABLE ...: partition attaches, constraints, trigger and row
// security states, owners.
func (w *words) alterTable(st *Stmt) {
	w.accept("alter")
	w.accept("foreign")
	w.accept("table")
	st.Kind = KAlterTable
	w.accept("if", "exists")
	st.Only = w.accept("only")
	st.Table = w.table()
	switch {
	case w.accept("attach", "partition"):
		st.Parent = st.Table
		st.Table = w.table()
	case w.accept("add", "constraint"):
		if n := w.name(); len(n) > 0 {
			st.Name = n[0]
		}
		switch {
		case w.accept("primary", "key"):
			st.Kind, st.Primary = KIndexConstraint, true
			st.Columns = w.keyColumns()
		case w.accept("unique"):
			st.Kind = KIndexConstraint
			if !w.accept("nulls", "not", "distinct") {
				w.accept("nulls", "distinct")
			}
			st.Columns = w.keyColumns()
		case w.accept("exclude"):
			st.Kind = KIndexConstraint
		case w.accept("foreign", "key"):
			st.Kind = KForeignKey
			if w.skipTo("references") {
				st.RefTable = w.table()
			}
		case w.accept("check"):
			st.Kind = KCheck
		}
	case w.accept("validate", "constraint"):
		st.Kind = KValidate
		if n := w.name(); len(n) > 0 {
			st.Name = n[0]
		}
	case w.accept("enable", "row", "level", "security"), w.accept("disable", "row", "level", "security"):
		st.Kind = KRowSecurity
	case w.accept("enable", "always", "trigger"), w.accept("enable", "replica", "trigger"), w.accept("enable", "trigger"), w.accept("disable", "trigger"):
		// pg_dump writes a partition's cloned trigger whose state differs from its parent's as
		// a TRIGGER entry holding only this statement.
		st.Kind = KTriggerState
		if n := w.name(); len(n) > 0 {
			st.Name = n[0]
		}
	default:
		w.ownerTo(st)
	}
}

// alterIndex reads the rest of ALTER INDEX: partition index attaches and owners.
func (w *words) alterIndex(st *Stmt) {
	st.Kind = KAlterIndex
	w.accept("if", "exists")
	n := w.name()
	if len(n) > 0 {
		st.Name = n[len(n)-1]
	}
	if len(n) > 1 {
		st.Table.Schema = n[len(n)-2]
	}
	if w.accept("attach", "partition") {
		st.Kind = KIndexAttach
		st.AttachName = w.table()
	} else {
		w.ownerTo(st)
	}
}

// executeFunction skips to EXECUTE FUNCTION | PROCEDURE and reads the function's name.
func (w *words) executeFunction() ident.Table {
	for ; w.i < len(w.t); w.i++ {
		if w.accept("execute", "function") || w.accept("execute", "procedure") {
			return w.table()
		}
	}
	return ident.Table{}
}

// plainKey reads the rest of CREATE INDEX after its table: [USING method] (columns) ...; it
// reports whether every column is a plain column (an expression has parentheses or is a
// function call) and there is no WHERE clause, which REFRESH ... CONCURRENTLY needs.
func (w *words) plainKey() bool {
	if w.accept("using") {
		w.name()
	}
	if w.i >= len(w.t) || w.t[w.i].Text != "(" {
		return false
	}
	depth := 0
	for ; w.i < len(w.t); w.i++ {
		switch tk := w.t[w.i]; {
		case tk.Kind == sqllex.TPunct && tk.Text == "(":
			if depth++; depth > 1 {
				return false
			}
		case tk.Kind == sqllex.TPunct && tk.Text == ")":
			depth--
		case depth == 0 && tk.Kind == sqllex.TWord && strings.EqualFold(tk.Text, "where"):
			return false
		}
	}
	return true
}

// keyColumns reads the parenthesised list at the cursor, "(a, "B" DESC, c text_pattern_ops)", as
// the first name of each element; nil when an element is an expression or there is no list.
// The cursor is left after the list.
func (w *words) keyColumns() []string {
	if w.i >= len(w.t) || w.t[w.i].Kind != sqllex.TPunct || w.t[w.i].Text != "(" {
		return nil
	}
	var cols []string
	first := true
	for w.i++; w.i < len(w.t); w.i++ {
		tk := w.t[w.i]
		switch {
		case tk.Kind == sqllex.TPunct && tk.Text == ")":
			w.i++
			return cols
		case tk.Kind == sqllex.TPunct && tk.Text == ",":
			first = true
		case tk.Kind == sqllex.TPunct && tk.Text == "(":
			return nil // an expression, or an operator class with parameters
		case !first:
		case tk.Kind == sqllex.TWord:
			cols, first = append(cols, strings.ToLower(tk.Text)), false
		case tk.Kind == sqllex.TQuotedIdent:
			cols, first = append(cols, unquoteIdent(tk.Text)), false
		default:
			return nil
		}
	}
	return nil
}

// ownerTo marks st as ALTER ... OWNER TO when the rest of the statement is "... OWNER TO role", with the role.
func (w *words) ownerTo(st *Stmt) {
	for j := w.i; j+1 < len(w.t); j++ {
		if w.t[j].Kind == sqllex.TWord && strings.EqualFold(w.t[j].Text, "owner") && w.t[j+1].Kind == sqllex.TWord && strings.EqualFold(w.t[j+1].Text, "to") {
			// OWNER TO must be followed by a role and the end of the statement.
			if j+3 >= len(w.t) || j+3 == len(w.t)-1 && w.t[j+3].Kind == sqllex.TSemicolon {
				st.Kind = KOwner
				if j+2 < len(w.t) {
					st.Owner = tokenName(w.t[j+2])
				}
			}
			return
		}
	}
}

// tokenName is a word or quoted identifier as the name it stands for.
func tokenName(t sqllex.Token) string {
	if t.Kind == sqllex.TQuotedIdent {
		return unquoteIdent(t.Text)
	}
	return strings.ToLower(t.Text)
}
