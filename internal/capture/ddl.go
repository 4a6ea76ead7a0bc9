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
	Owner      bool          // the installing role owns the table: triggers are made ENABLE ALWAYS
	Children   []ident.Table // every partition below a partitioned table, for the TRUNCATE trigger
	OldDelta   string        // a stale delta table to drop (the table was dropped and re-created)
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

// functionSQL is the row trigger function of one table: SECURITY DEFINER, so every role that may
// write the table may write its delta table, with a pinned search_path and qualified names.
func functionSQL(schema string, s tableSpec) string {
	qs := ident.Quote(schema)
	delta := qs + "." + ident.Quote(DeltaName(s.Relid))
	cols := ident.QuoteList(s.KeyColumns) + ", txid"
	vals := func(rec string) string {
		v := make([]string, len(s.KeyColumns))
		for i, c := range s.KeyColumns {
			v[i] = rec + "." + ident.Quote(c)
		}
		return strings.Join(v, ", ")
	}
	row := func(rec string) string { return "ROW(" + vals(rec) + ")" }
	ins := func(rec string) string {
		return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s, pg_catalog.txid_current());", delta, cols, vals(rec))
	}
	body := fmt.Sprintf(`BEGIN
  IF TG_OP = 'DELETE' THEN
    %s
    RETURN NULL;
  END IF;
  %s
  IF TG_OP = 'UPDATE' AND %s IS DISTINCT FROM %s THEN
    %s
  END IF;
  RETURN NULL;
END
`, ins("OLD"), ins("NEW"), row("OLD"), row("NEW"), ins("OLD"))
	return fmt.Sprintf("CREATE OR REPLACE FUNCTION %s.%s() RETURNS trigger\nLANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %s;\n",
		qs, ident.Quote(FuncName(s.Relid)), dollarQuote(body))
}

func deltaTableSQL(schema string, s tableSpec) string {
	qs := ident.Quote(schema)
	defs := make([]string, len(s.KeyColumns))
	for i, c := range s.KeyColumns {
		defs[i] = ident.Quote(c) + " " + s.KeyTypes[i]
	}
	name := DeltaName(s.Relid)
	using := ""
	if DeltaIndex != "btree" {
		using = " USING " + DeltaIndex
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (%s, txid bigint NOT NULL);\nCREATE INDEX IF NOT EXISTS %s ON %s.%s%s (txid);\n",
		qs, ident.Quote(name), strings.Join(defs, ", "), ident.Quote(name+"_txid"), qs, ident.Quote(name), using)
}

func truncateTriggerSQL(schema string, on, captured ident.Table, owner bool) string {
	trg := ident.Quote(TruncateTriggerName(schema))
	s := fmt.Sprintf("DROP TRIGGER IF EXISTS %s ON %s;\nCREATE TRIGGER %s AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE PROCEDURE %s.capture_truncate(%s);\n",
		trg, on, trg, on, ident.Quote(schema), ident.Literal(captured.Key()))
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
	trg := ident.Quote(TriggerName(schema))
	var b strings.Builder
	b.WriteString(lockTimeoutSQL(lockTimeout))
	if s.OldDelta != "" && s.OldDelta != DeltaName(s.Relid) {
		fmt.Fprintf(&b, "DROP TABLE IF EXISTS %s.%s;\n", qs, ident.Quote(s.OldDelta))
	}
	b.WriteString(deltaTableSQL(schema, s))
	b.WriteString(functionSQL(schema, s))
	fmt.Fprintf(&b, "DROP TRIGGER IF EXISTS %s ON %s;\n", trg, s.Table)
	fmt.Fprintf(&b, "CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE PROCEDURE %s.%s();\n",
		trg, s.Table, qs, ident.Quote(FuncName(s.Relid)))
	if s.Owner {
		fmt.Fprintf(&b, "ALTER TABLE %s ENABLE ALWAYS TRIGGER %s;\n", s.Table, trg)
	}
	b.WriteString(truncateTriggerSQL(schema, s.Table, s.Table, s.Owner))
	for _, c := range s.Children {
		b.WriteString(truncateTriggerSQL(schema, c, s.Table, s.Owner))
	}
	lits := func(v []string) string {
		q := make([]string, len(v))
		for i, x := range v {
			q[i] = ident.Literal(x)
		}
		return "ARRAY[" + strings.Join(q, ", ") + "]::text[]"
	}
	fmt.Fprintf(&b, `INSERT INTO %s.capture_tables (table_name, relid, delta_table, key_columns, key_types, installed_txid, installed_snapshot, installed_at)
VALUES (%s, %d, %s, %s, %s, txid_current(), txid_current_snapshot()::text, now())
ON CONFLICT (table_name) DO UPDATE SET relid = EXCLUDED.relid, delta_table = EXCLUDED.delta_table,
  key_columns = EXCLUDED.key_columns, key_types = EXCLUDED.key_types, installed_txid = EXCLUDED.installed_txid,
  installed_snapshot = EXCLUDED.installed_snapshot, installed_at = EXCLUDED.installed_at;
`, qs, ident.Literal(s.Table.Key()), s.Relid, ident.Literal(DeltaName(s.Relid)), lits(s.KeyColumns), lits(s.KeyTypes))
	return b.String()
}
