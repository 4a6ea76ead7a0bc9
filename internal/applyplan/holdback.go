package applyplan

import (
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/sqlstmt"
)

// MarkUnique marks the steps RunGated holds back on tables the gate calls mixed (Gate.Mix):
// the unique indexes and UNIQUE / EXCLUDE constraints that isKey does not accept as a table's
// key (it gets the table's key as the statement names it and the key columns, nil for an
// expression), and the statements on those indexes (partition index attaches, comments, other
// ALTER INDEX), which are held back when the index they name was.
//
// A table copied under several snapshots is not a state the source ever had until catch-up has
// passed the newest of them: such an index may fail on rows the catch-up would have fixed
// (design brief, invariant 4), so it waits for the first catch-up. Keys cannot collide: the
// copy's chunks are ranges of them.
func (p *Plan) MarkUnique(isKey func(table string, columns []string) bool) {
	for i := range p.Steps {
		s := &p.Steps[i]
		st := sqlstmt.Parse(s.SQL)
		name := st.Table.Schema + "." + st.Name
		switch st.Kind {
		case sqlstmt.KIndex:
			if st.Unique && len(s.Tables) == 1 && !isKey(s.Tables[0], st.Columns) {
				s.uniqueIndex = name
			}
		case sqlstmt.KIndexConstraint:
			if !st.Primary && len(s.Tables) == 1 && (st.Columns == nil || !isKey(s.Tables[0], st.Columns)) {
				s.uniqueIndex = name
			}
		case sqlstmt.KIndexAttach:
			s.onIndexes = []string{name, attachKey(st.AttachName, st.Table.Schema)}
		case sqlstmt.KAlterIndex:
			s.onIndexes = []string{name}
		case sqlstmt.KComment:
			if st.CommentOn == "index" || st.CommentOn == "constraint" {
				s.onIndexes = []string{name}
			}
		}
	}
}

// attachKey is the "schema.name" of the index ALTER INDEX ... ATTACH PARTITION names, in the
// parent index's schema when it names none.
func attachKey(t ident.Table, schema string) string {
	if t.Schema == "" {
		t.Schema = schema
	}
	return t.Schema + "." + t.Name
}

// holdBack reports whether a step that may start now is held back instead (MarkUnique),
// recording the index it would have created; called with the scheduler's lock held.
func (sc *scheduler) holdBack(s Step) bool {
	held := s.uniqueIndex != "" && sc.gate.mixedTable(s.Tables[0])
	for _, n := range s.onIndexes {
		held = held || sc.heldIndexes[n]
	}
	if held {
		if s.uniqueIndex != "" {
			sc.heldIndexes[s.uniqueIndex] = true
		}
		sc.p.Held = append(sc.p.Held, s)
	}
	return held
}
