package capture

import (
	"fmt"
	"strings"
	"time"

	"github.com/pgferry/pgferry/internal/ident"
)

// DeltaIndex is how the txid column of a delta table is indexed; see docs/benchmarks.md, "## Capture".
const DeltaIndex = "btree"

// tableSpec is what the per-table DDL needs to know.
type tableSpec struct {
	Table      ident.Table
	Relid      uint32
	KeyColumns []string
	KeyTypes   []string
	EqOps      []string // schema-qualified equality operator of each key column's index opclass
	// KeyCollations holds " COLLATE x.y" for key columns whose collation is not the type's default.
	KeyCollations []string
	Statement     bool          // statement-level triggers with transition tables (see docs/benchmarks.md)
	Owner         bool          // the installing role owns the table: triggers are made ENABLE ALWAYS
	BeforeUpdate  bool          // the table has BEFORE ROW UPDATE triggers of its own
	Children      []ident.Table // every partition below a partitioned table, for the TRUNCATE trigger
	OldDelta      string        // a stale delta table to drop (the table was re-created or its key changed)
	// EnableOnly makes the row trigger ENABLE ALWAYS on the partitioned table alone (ALTER TABLE
	// ONLY): before 13 its clones on existing partitions are system triggers only a superuser may alter.
	EnableOnly bool
	// Present names the capture triggers already on the table, and ChildHasTruncate says which
	// children already carry the TRUNCATE trigger. Only those are dropped: DROP TRIGGER takes an
	// ACCESS EXCLUSIVE lock (even with IF EXISTS), which would stall readers too, so a fresh
	// install takes nothing stronger than CREATE TRIGGER's SHARE ROW EXCLUSIVE.
	Present          map[string]bool
	ChildHasTruncate []bool
	// Keyless: the table has no key; KeyColumns are all its stored columns and the delta table
	// holds whole rows (keyless.go).
	Keyless bool
}

func lockTimeoutSQL(d time.Duration) string {
	return fmt.Sprintf("SET LOCAL lock_timeout = '%dms';\n", d.Milliseconds())
}

// dollarQuote quotes body with a dollar-quote tag that does not occur in it.
func dollarQuote(body string) string {
	tag := "$pgferry$"
	for i := 0; strings.Contains(body, tag); i++ {
		tag = fmt.Sprintf("$pgferry%d$", i)
	}
	return tag + "\n" + body + tag
}

// Trigger name suffixes: one row trigger, or one statement trigger per event.
const (
	sufRow = "_capture"
	sufIns = "_capture_ins"
	sufUpd = "_capture_upd"
	sufDel = "_capture_del"
	sufKey = "_capture_key"
)

// captureTriggerNames are every capture trigger name a table may carry, for either design.
func captureTriggerNames(schema string) []string {
	return []string{limitName(schema + sufRow), limitName(schema + sufIns), limitName(schema + sufUpd), limitName(schema + sufDel), limitName(schema + sufKey)}
}

// keyEqual is the SQL condition "the keys of a and b are equal", with the key index's own
// equality operators, so neither search_path nor a user-defined type can change its meaning.
func keyEqual(s tableSpec, a, b string) string {
	c := make([]string, len(s.KeyColumns))
	for i, k := range s.KeyColumns {
		c[i] = fmt.Sprintf("%s.%s %s %s.%s", a, ident.Quote(k), s.EqOps[i], b, ident.Quote(k))
	}
	return strings.Join(c, " AND ")
}

func keyList(s tableSpec, rec string) string {
	v := make([]string, len(s.KeyColumns))
	for i, c := range s.KeyColumns {
		v[i] = rec + "." + ident.Quote(c)
	}
	return strings.Join(v, ", ")
}

func functionHead(schema, name string) string {
	return fmt.Sprintf("CREATE OR REPLACE FUNCTION %s.%s() RETURNS trigger\nLANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS ",
		ident.Quote(schema), ident.Quote(name))
}

// triggerFunctionSQL creates (or replaces) the capture trigger function schema.name from body, a
// plpgsql block "BEGIN\n...END\n" whose first statement becomes the write fence check
// (FenceCheckSQL). Every capture trigger function is made here, so none can miss the fence.
func triggerFunctionSQL(schema, name, body string) string {
	rest, ok := strings.CutPrefix(body, "BEGIN\n")
	if !ok {
		panic("capture: the body of trigger function " + name + " must start with BEGIN")
	}
	return functionHead(schema, name) + dollarQuote("BEGIN\n"+FenceCheckSQL(schema)+rest) + ";\n"
}

// functionSQL creates the trigger functions of one table: SECURITY DEFINER, so every role that
// may write the table may write its delta table, with a pinned search_path and qualified names.
// Row design: one function, INSERT records NEW's key, DELETE OLD's, UPDATE NEW's and OLD's when
// the key changed. Statement design: one function per event reading the transition tables.
func functionSQL(schema string, s tableSpec) string {
	if s.Keyless {
		return keylessFunctionSQL(schema, s)
	}
	delta := ident.Quote(schema) + "." + ident.Quote(DeltaName(s.Relid))
	cols := ident.QuoteList(s.KeyColumns) + ", txid"
	if !s.Statement {
		ins := func(rec string) string {
			return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s, pg_catalog.txid_current());", delta, cols, keyList(s, rec))
		}
		body := fmt.Sprintf(`BEGIN
  IF TG_OP = 'DELETE' THEN
    %s
    RETURN NULL;
  END IF;
  %s
  IF TG_OP = 'UPDATE' AND NOT (%s) THEN
    %s
  END IF;
  RETURN NULL;
END
`, ins("OLD"), ins("NEW"), keyEqual(s, "OLD", "NEW"), ins("OLD"))
		return triggerFunctionSQL(schema, FuncName(s.Relid), body)
	}
	ins := fmt.Sprintf("BEGIN\n  INSERT INTO %s (%s) SELECT %s, pg_catalog.txid_current() FROM pgferry_new n;\n  RETURN NULL;\nEND\n", delta, cols, keyList(s, "n"))
	del := fmt.Sprintf("BEGIN\n  INSERT INTO %s (%s) SELECT %s, pg_catalog.txid_current() FROM pgferry_old o;\n  RETURN NULL;\nEND\n", delta, cols, keyList(s, "o"))
	// UPDATE records the new keys in one statement; the old key of a row whose key changed is
	// recorded by a row trigger whose WHEN clause (evaluated in C, no function call) is false for
	// every row that keeps its key. This avoids materialising the old rows and an anti-join, which
	// made a bulk UPDATE cost 2.5x instead of about 2x.
	upd := fmt.Sprintf("BEGIN\n  INSERT INTO %s (%s) SELECT %s, pg_catalog.txid_current() FROM pgferry_new n;\n  RETURN NULL;\nEND\n", delta, cols, keyList(s, "n"))
	key := fmt.Sprintf("BEGIN\n  INSERT INTO %s (%s) VALUES (%s, pg_catalog.txid_current());\n  RETURN NULL;\nEND\n", delta, cols, keyList(s, "OLD"))
	return triggerFunctionSQL(schema, FuncName(s.Relid)+"_i", ins) +
		triggerFunctionSQL(schema, FuncName(s.Relid)+"_u", upd) +
		triggerFunctionSQL(schema, FuncName(s.Relid)+"_d", del) +
		triggerFunctionSQL(schema, FuncName(s.Relid)+"_k", key)
}

// triggersSQL replaces the capture triggers of a table (dropping those of the other design).
func triggersSQL(schema string, s tableSpec) string {
	var b strings.Builder
	for _, n := range captureTriggerNames(schema) {
		if s.Present[n] {
			fmt.Fprintf(&b, "DROP TRIGGER IF EXISTS %s ON %s;\n", ident.Quote(n), s.Table)
		}
	}
	qs := ident.Quote(schema)
	var made []string
	if !s.Statement {
		n := ident.Quote(limitName(schema + sufRow))
		fmt.Fprintf(&b, "CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE PROCEDURE %s.%s();\n",
			n, s.Table, qs, ident.Quote(FuncName(s.Relid)))
		made = append(made, n)
	} else {
		upd := "NEW TABLE AS pgferry_new"
		if s.Keyless {
			upd = "OLD TABLE AS pgferry_old NEW TABLE AS pgferry_new" // whole rows: the old ones too
		}
		for _, e := range []struct{ suf, event, ref, fn string }{
			{sufIns, "INSERT", "NEW TABLE AS pgferry_new", "_i"},
			{sufUpd, "UPDATE", upd, "_u"},
			{sufDel, "DELETE", "OLD TABLE AS pgferry_old", "_d"},
		} {
			n := ident.Quote(limitName(schema + e.suf))
			fmt.Fprintf(&b, "CREATE TRIGGER %s AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT EXECUTE PROCEDURE %s.%s();\n",
				n, e.event, s.Table, e.ref, qs, ident.Quote(FuncName(s.Relid)+e.fn))
			made = append(made, n)
		}
	}
	if s.Statement && !s.Keyless {
		// The key trigger fires only for UPDATEs that name a key column (so the common UPDATE pays
		// nothing, not even the WHEN clause's set-up), unless a BEFORE ROW UPDATE trigger of the
		// table's own could change a key column behind the statement's back.
		of := " OF " + ident.QuoteList(s.KeyColumns)
		if s.BeforeUpdate {
			of = ""
		}
		n := ident.Quote(limitName(schema + sufKey))
		fmt.Fprintf(&b, "CREATE TRIGGER %s AFTER UPDATE%s ON %s FOR EACH ROW WHEN (NOT (%s)) EXECUTE PROCEDURE %s.%s();\n",
			n, of, s.Table, keyEqual(s, "OLD", "NEW"), qs, ident.Quote(FuncName(s.Relid)+"_k"))
		made = append(made, n)
	}
	if s.Owner {
		only := ""
		if s.EnableOnly {
			only = "ONLY "
		}
		for _, n := range made {
			fmt.Fprintf(&b, "ALTER TABLE %s%s ENABLE ALWAYS TRIGGER %s;\n", only, s.Table, n)
		}
	}
	return b.String()
}

func deltaTableSQL(schema string, s tableSpec) string {
	qs := ident.Quote(schema)
	defs := make([]string, len(s.KeyColumns))
	for i := range s.KeyColumns {
		defs[i] = ident.Quote(deltaColumns(s)[i]) + " " + s.KeyTypes[i]
		if i < len(s.KeyCollations) {
			defs[i] += s.KeyCollations[i]
		}
	}
	name := DeltaName(s.Relid)
	using := ""
	if DeltaIndex != "btree" {
		using = " USING " + DeltaIndex
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (%s, txid bigint NOT NULL);\nCREATE INDEX IF NOT EXISTS %s ON %s.%s%s (txid);\n",
		qs, ident.Quote(name), strings.Join(defs, ", "), ident.Quote(name+"_txid"), qs, ident.Quote(name), using)
}

func truncateTriggerSQL(schema string, on, captured ident.Table, owner, present bool) string {
	trg := ident.Quote(TruncateTriggerName(schema))
	s := ""
	if present {
		s = fmt.Sprintf("DROP TRIGGER IF EXISTS %s ON %s;\n", trg, on)
	}
	s += fmt.Sprintf("CREATE TRIGGER %s AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE PROCEDURE %s.capture_truncate(%s);\n",
		trg, on, ident.Quote(schema), ident.Literal(captured.Key()))
	if owner {
		s += fmt.Sprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s;\n", on, trg)
	}
	return s
}

// installSQL is the body of the one transaction that captures a table: delta table, function,
// triggers and registry row, so the registry row is visible exactly when capture is committed.
// The application table is locked only by the trigger statements, after everything else is ready,
// and the registry row's snapshot is taken after that lock is granted.
func installSQL(schema string, s tableSpec, lockTimeout time.Duration) string {
	qs := ident.Quote(schema)
	var b strings.Builder
	b.WriteString(lockTimeoutSQL(lockTimeout))
	if s.OldDelta != "" {
		fmt.Fprintf(&b, "DROP TABLE IF EXISTS %s.%s;\n", qs, ident.Quote(s.OldDelta))
	}
	b.WriteString(deltaTableSQL(schema, s))
	b.WriteString(functionSQL(schema, s))
	b.WriteString(triggersSQL(schema, s))
	b.WriteString(truncateTriggerSQL(schema, s.Table, s.Table, s.Owner, s.Present[TruncateTriggerName(schema)]))
	for i, c := range s.Children {
		b.WriteString(truncateTriggerSQL(schema, c, s.Table, s.Owner, i < len(s.ChildHasTruncate) && s.ChildHasTruncate[i]))
	}
	lits := func(v []string) string {
		q := make([]string, len(v))
		for i, x := range v {
			q[i] = ident.Literal(x)
		}
		return "ARRAY[" + strings.Join(q, ", ") + "]::text[]"
	}
	fmt.Fprintf(&b, `INSERT INTO %[1]s.capture_tables (table_name, relid, delta_table, key_columns, key_types, keyless, installed_txid, installed_snapshot, installed_at, columns, partitions)
VALUES (%[2]s, %[3]d, %[4]s, %[5]s, %[6]s, %[7]t, txid_current(), txid_current_snapshot()::text, now(), %[8]s, %[9]s)
ON CONFLICT (table_name) DO UPDATE SET relid = EXCLUDED.relid, delta_table = EXCLUDED.delta_table,
  key_columns = EXCLUDED.key_columns, key_types = EXCLUDED.key_types, keyless = EXCLUDED.keyless, installed_txid = EXCLUDED.installed_txid,
  installed_snapshot = EXCLUDED.installed_snapshot, installed_at = EXCLUDED.installed_at, columns = EXCLUDED.columns, partitions = EXCLUDED.partitions;
`, qs, ident.Literal(s.Table.Key()), s.Relid, ident.Literal(DeltaName(s.Relid)), lits(s.KeyColumns), lits(s.KeyTypes), s.Keyless,
		columnsSQL(fmt.Sprint(s.Relid)), partitionsSQL(fmt.Sprint(s.Relid)))
	return b.String()
}
