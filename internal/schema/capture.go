package schema

import (
	"github.com/pgferry/pgferry/internal/sqlstmt"
	"strings"
)

// CapturePrefix starts the name of pgferry's triggers under the default capture schema
// (pgtrig names them <capture schema>_capture and <capture schema>_truncate; see
// internal/capture.TriggerName). Whatever their name, pgtrig's triggers call functions in the
// capture schema, which is checked too.
const CapturePrefix = "pgferry_"

// isCaptureTrigger reports whether a trigger with this name and function is pgtrig's.
func isCaptureTrigger(name, fnSchema, capture string) bool {
	return strings.HasPrefix(name, CapturePrefix) || fnSchema == capture ||
		name == capture+"_capture" || name == capture+"_truncate"
}

// isCaptureEntry reports whether an entry belongs to pgferry's own capture machinery:
// anything in the capture schema, the schema itself, and triggers named pgferry_* or
// calling a function in the capture schema.
func isCaptureEntry(e *Entry, capture string) bool {
	if e.HasHeader {
		h := e.Header
		if h.Schema == capture {
			return true
		}
		if h.Type == "SCHEMA" && h.Name == capture {
			return true
		}
		n := strings.ReplaceAll(h.Name, `"`, "")
		if n == "SCHEMA "+capture {
			return true
		}
		switch h.Type {
		case "COMMENT", "SECURITY LABEL":
			for _, p := range []string{"TRIGGER ", "EVENT TRIGGER "} {
				if name, ok := strings.CutPrefix(n, p); ok {
					name, _, _ = strings.Cut(name, " ON ")
					if isCaptureTrigger(name, "", capture) {
						return true
					}
				}
			}
		}
	}
	for _, c := range e.Chunks {
		if isCaptureStmt(c.Stmt, capture) {
			return true
		}
	}
	return false
}

// isCaptureStmt reports whether a statement creates or changes a capture object.
func isCaptureStmt(st sqlstmt.Stmt, capture string) bool {
	switch st.Kind {
	case sqlstmt.KTrigger, sqlstmt.KEventTrigger:
		return isCaptureTrigger(st.Name, st.Function.Schema, capture)
	case sqlstmt.KTriggerState:
		return isCaptureTrigger(st.Name, "", capture) || st.Table.Schema == capture
	case sqlstmt.KComment:
		return (st.CommentOn == "trigger" || st.CommentOn == "event trigger") && isCaptureTrigger(st.Name, "", capture)
	case sqlstmt.KAlterTable:
		return st.Table.Schema == capture
	case sqlstmt.KIndex, sqlstmt.KIndexConstraint, sqlstmt.KForeignKey, sqlstmt.KCheck, sqlstmt.KValidate:
		return st.Table.Schema == capture
	}
	return false
}
