package copyin

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgver"
	"github.com/pgferry/pgferry/internal/stream"
)

// target is a stream table resolved on the target.
type target struct {
	name    string      // unquoted schema.table as in the stream
	table   ident.Table // for SQL
	copySQL string      // COPY t (cols in stream order) FROM STDIN [(FORMAT binary)]
	binary  bool        // the stream carries the table in binary COPY format
}

// columnsSQL reads a table's kind, stored columns and generated columns, in attnum order, for
// the server's version (no generated columns before PostgreSQL 12).
func columnsSQL(v pgver.Version) string {
	cols := func(cond string) string {
		return "coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND " + cond + "), '{}')"
	}
	return "SELECT c.relkind::text, " + cols(v.StoredColumn("a")) + ", " + cols(v.GeneratedColumn("a")) +
		" FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2"
}

// checkTables resolves every stream table on the target and checks each of its columns exists
// and can be written; it returns one target per header table, in header order.
func checkTables(ctx context.Context, conn *pgx.Conn, h *stream.Header) ([]*target, error) {
	var problems []string
	out := make([]*target, len(h.Tables))
	q := columnsSQL(pgver.Of(conn))
	for i, t := range h.Tables {
		tb, err := ident.ParseKey(t.Name)
		if err != nil {
			return nil, fmt.Errorf("stream table %q: %w", t.Name, err)
		}
		var kind string
		var cols []string
		var generated []string
		err = conn.QueryRow(ctx, q, tb.Schema, tb.Name).Scan(&kind, &cols, &generated)
		if err == pgx.ErrNoRows {
			problems = append(problems, fmt.Sprintf("table %s does not exist on the target", t.Name))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("check table %s on the target: %w", t.Name, err)
		}
		if kind != "r" && kind != "p" {
			problems = append(problems, fmt.Sprintf("%s on the target is not a table (relkind %s)", t.Name, kind))
			continue
		}
		have := map[string]bool{}
		for _, c := range cols {
			have[c] = true
		}
		gen := map[string]bool{}
		for _, c := range generated {
			gen[c] = true
		}
		for _, c := range t.Columns {
			switch {
			case gen[c]:
				problems = append(problems, fmt.Sprintf("table %s: column %q is generated on the target and cannot be loaded", t.Name, c))
			case !have[c]:
				problems = append(problems, fmt.Sprintf("table %s: column %q does not exist on the target", t.Name, c))
			}
		}
		out[i] = &target{name: t.Name, table: tb, binary: t.Binary(),
			copySQL: "COPY " + tb.String() + " (" + ident.QuoteList(t.Columns) + ") FROM STDIN"}
		if t.Binary() {
			out[i].copySQL += " (FORMAT binary)"
		}
	}
	if len(problems) > 0 {
		msg := problems[0]
		if len(problems) > 1 {
			msg = fmt.Sprintf("%d schema problems: %s", len(problems), strings.Join(problems, "; "))
		}
		return nil, cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("target schema does not match the stream: %s", msg),
			"create the missing tables and columns first (pgschema dump --section pre-data | pgschema apply), or exclude those tables in pgcopyout; nothing was loaded")
	}
	return out, nil
}

func quoteSchema(s string) string { return ident.Quote(s) }
