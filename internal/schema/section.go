package schema

import (
	"fmt"
	"io"
	"strings"

	"github.com/pgferry/pgferry/internal/sqlstmt"
)

// Section is a part of a schema, in the order a migration creates them.
type Section int

// Sections. PostData is Indexes, Constraints, Triggers, OtherPost and Refresh together.
const (
	PreData     Section = iota // types, tables, sequences, functions, views, ACLs
	Indexes                    // indexes, PRIMARY KEY / UNIQUE / EXCLUDE constraints, index attaches, statistics
	Constraints                // foreign keys and separately dumped (NOT VALID) check constraints
	Triggers                   // user triggers, rules, event triggers, row security and policies: what changes what the target's writes and reads do
	OtherPost                  // other post-data objects: publications, subscriptions
	Refresh                    // REFRESH MATERIALIZED VIEW of the views populated on the source, in pg_dump's dependency order
	Data                       // table data, sequence values, large objects: only in "all"
)

// SectionNames lists the values of --section.
var SectionNames = []string{"pre-data", "indexes", "constraints", "triggers", "refresh", "post-data", "all"}

// sectionSet parses --section into the set of sections it selects.
func sectionSet(name string) (map[Section]bool, error) {
	switch name {
	case "pre-data":
		return map[Section]bool{PreData: true}, nil
	case "indexes":
		return map[Section]bool{Indexes: true}, nil
	case "constraints":
		return map[Section]bool{Constraints: true}, nil
	case "triggers":
		return map[Section]bool{Triggers: true}, nil
	case "refresh":
		return map[Section]bool{Refresh: true}, nil
	case "post-data":
		return map[Section]bool{Indexes: true, Constraints: true, Triggers: true, OtherPost: true, Refresh: true}, nil
	case "all", "":
		return map[Section]bool{PreData: true, Indexes: true, Constraints: true, Triggers: true, OtherPost: true, Refresh: true, Data: true}, nil
	}
	return nil, fmt.Errorf("bad --section %q: want one of %s", name, strings.Join(SectionNames, ", "))
}

func (s Section) String() string {
	return [...]string{"pre-data", "indexes", "constraints", "triggers", "other post-data", "refresh", "data"}[s]
}

// sectionOfKind is the section a statement's text implies, if it implies one.
func sectionOfKind(st sqlstmt.Stmt) (Section, bool) {
	switch st.Kind {
	case sqlstmt.KIndex, sqlstmt.KIndexConstraint, sqlstmt.KIndexAttach:
		return Indexes, true
	case sqlstmt.KForeignKey, sqlstmt.KValidate:
		return Constraints, true
	case sqlstmt.KTrigger, sqlstmt.KEventTrigger, sqlstmt.KTriggerState, sqlstmt.KRowSecurity, sqlstmt.KPolicy:
		return Triggers, true
	case sqlstmt.KRefresh:
		return Refresh, true
	case sqlstmt.KRule:
		if st.Name == "_return" || st.Name == "_RETURN" {
			return PreData, true
		}
		return Triggers, true
	}
	return PreData, false
}

// classify assigns every entry a section, from pg_dump's header Type, and checks that the
// statements agree with the header. Entries without a header are classified statement by
// statement (see chunkSection). An entry whose first statement is not the kind its header
// announces stays in the header's section with a warning on warn (pg_dump prints shapes such as
// a view completed by CREATE OR REPLACE VIEW under a RULE header); a statement that belongs to
// another section (an index in a TABLE entry) is refused, since keeping it would run it too early.
func classify(sc *Script, warn io.Writer) (map[*Entry]Section, error) {
	out := map[*Entry]Section{}
	// section of each constraint, index, trigger and rule by "KIND name ON table" for COMMENT entries
	objSection := map[string]Section{}
	for _, e := range sc.Entries {
		if !e.HasHeader {
			continue
		}
		first := firstStmt(e)
		sec, want := headerSection(e, first, objSection)
		if want != nil {
			if first == nil {
				return nil, mismatch(e, nil, "no statement")
			}
			ok := false
			for _, k := range want {
				ok = ok || first.Stmt.Kind == k
			}
			if !ok {
				if _, implied := sectionOfKind(first.Stmt); implied {
					return nil, mismatch(e, first, "a statement of kind "+first.Stmt.Kind.String())
				}
				if warn != nil {
					fmt.Fprintf(warn, "pgschema: warning: line %d: pg_dump's header at line %d says %q is a %s, but it holds a statement of kind %s; kept in the %s section, as pg_dump would restore it\n",
						first.Piece.Line, e.Header.Line, e.Header.Name, e.Header.Type, first.Stmt.Kind, sec)
				}
			}
		}
		// Cross-check: no statement in the entry may belong to another section.
		if e.Header.Type != "COMMENT" && e.Header.Type != "SECURITY LABEL" {
			for _, c := range e.Chunks {
				if s, ok := sectionOfKind(c.Stmt); ok && s != sec {
					return nil, mismatch(e, c, "a "+c.Stmt.Kind.String()+" statement (section "+s.String()+")")
				}
			}
		}
		out[e] = sec
		if first != nil && first.Stmt.Name != "" {
			key := ""
			switch first.Stmt.Kind {
			case sqlstmt.KIndexConstraint, sqlstmt.KForeignKey, sqlstmt.KCheck:
				key = "CONSTRAINT " + first.Stmt.Name
			case sqlstmt.KIndex:
				key = "INDEX " + first.Stmt.Name
			case sqlstmt.KTrigger:
				key = "TRIGGER " + first.Stmt.Name
			case sqlstmt.KRule:
				key = "RULE " + first.Stmt.Name
			case sqlstmt.KEventTrigger:
				key = "EVENT TRIGGER " + first.Stmt.Name
			case sqlstmt.KPolicy:
				key = "POLICY " + first.Stmt.Name
			}
			if key != "" {
				objSection[strings.ToLower(key+" ON "+first.Stmt.Table.Name)] = sec
				objSection[strings.ToLower(key)] = sec
			}
		}
	}
	return out, nil
}

// headerSection is the section pg_dump's header Type puts an entry in, and the statement kinds
// the entry's first statement may have (nil: any).
func headerSection(e *Entry, first *Chunk, objSection map[string]Section) (sec Section, want []sqlstmt.Kind) {
	switch e.Header.Type {
	case "INDEX":
		sec, want = Indexes, []sqlstmt.Kind{sqlstmt.KIndex}
	case "INDEX ATTACH":
		sec, want = Indexes, []sqlstmt.Kind{sqlstmt.KIndexAttach}
	case "STATISTICS":
		sec = Indexes
	case "CONSTRAINT":
		want = []sqlstmt.Kind{sqlstmt.KIndexConstraint, sqlstmt.KForeignKey, sqlstmt.KCheck}
		sec = Constraints
		if first != nil && first.Stmt.Kind == sqlstmt.KIndexConstraint {
			sec = Indexes
		}
	case "FK CONSTRAINT":
		sec, want = Constraints, []sqlstmt.Kind{sqlstmt.KForeignKey}
	case "CHECK CONSTRAINT":
		sec = Constraints
	case "TRIGGER":
		sec, want = Triggers, []sqlstmt.Kind{sqlstmt.KTrigger, sqlstmt.KTriggerState}
	case "EVENT TRIGGER":
		sec, want = Triggers, []sqlstmt.Kind{sqlstmt.KEventTrigger}
	case "RULE":
		sec, want = Triggers, []sqlstmt.Kind{sqlstmt.KRule}
		if first != nil && strings.EqualFold(first.Stmt.Name, "_return") {
			sec = PreData // completes a view: belongs with the view
		}
	case "ROW SECURITY":
		sec, want = Triggers, []sqlstmt.Kind{sqlstmt.KRowSecurity}
	case "POLICY":
		sec, want = Triggers, []sqlstmt.Kind{sqlstmt.KPolicy}
	case "MATERIALIZED VIEW DATA":
		sec, want = Refresh, []sqlstmt.Kind{sqlstmt.KRefresh}
	case "PUBLICATION", "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA", "SUBSCRIPTION", "SUBSCRIPTION TABLE":
		sec = OtherPost
	case "COMMENT", "SECURITY LABEL":
		sec = commentSection(e.Header.Name, objSection)
	case "TABLE DATA", "SEQUENCE SET", "BLOB", "BLOBS", "BLOB DATA", "LARGE OBJECT", "LARGE OBJECTS":
		sec = Data
	default:
		sec = PreData
	}
	return sec, want
}

// commentSection places a COMMENT entry (Name: "INDEX x", "CONSTRAINT c ON t", "TRIGGER t ON x",
// ...) in the section of the object it comments.
func commentSection(name string, objSection map[string]Section) Section {
	key := strings.ToLower(strings.ReplaceAll(name, `"`, ""))
	if s, ok := objSection[key]; ok {
		return s
	}
	if i := strings.Index(key, " on "); i >= 0 {
		if s, ok := objSection[key[:i]]; ok {
			return s
		}
	}
	switch {
	case strings.HasPrefix(key, "index "):
		return Indexes
	case strings.HasPrefix(key, "trigger "), strings.HasPrefix(key, "event trigger "), strings.HasPrefix(key, "policy "):
		return Triggers
	case strings.HasPrefix(key, "rule "):
		if strings.HasPrefix(key, "rule _return ") {
			return PreData
		}
		return Triggers
	case strings.HasPrefix(key, "publication "), strings.HasPrefix(key, "subscription "):
		return OtherPost
	}
	return PreData
}

func firstStmt(e *Entry) *Chunk {
	for _, c := range e.Chunks {
		if !c.Global() {
			return c
		}
	}
	return nil
}

func mismatch(e *Entry, c *Chunk, got string) error {
	line := e.Header.Line
	if c != nil {
		line = c.Piece.Line
	}
	return errorf(FixEdited, "classify dump: line %d: pg_dump's header at line %d says %q is a %s, but it holds %s",
		line, e.Header.Line, e.Header.Name, e.Header.Type, got)
}

// chunkSection is the section of a statement outside any pg_dump header (hand-written SQL).
func chunkSection(c *Chunk) Section {
	s, _ := sectionOfKind(c.Stmt)
	return s
}
