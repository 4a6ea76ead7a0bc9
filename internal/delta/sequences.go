package delta

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/ident"
)

// SequenceResult is one sequence set on the target.
type SequenceResult struct {
	Sequence string `json:"sequence"`
	Value    int64  `json:"value"`
	Called   bool   `json:"called"`
}

// SyncSequences sets every selected target sequence (identity ones too) to the source's value
// plus margin. Sequences missing on the target are reported together at the end.
func SyncSequences(ctx context.Context, src, dst *pgx.Conn, f catalog.Filter, skipSchemas []string, margin int64, out io.Writer) ([]SequenceResult, error) {
	list, err := selectSequences(ctx, src, f, skipSchemas)
	if err != nil {
		return nil, err
	}
	var res []SequenceResult
	var missing []string
	for _, t := range list {
		var v int64
		var called bool
		if err := src.QueryRow(ctx, "SELECT last_value, is_called FROM "+t.String()).Scan(&v, &called); err != nil {
			return res, fmt.Errorf("read sequence %s on source: %w", t.Key(), err)
		}
		var exists bool
		if err := dst.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", t.String()).Scan(&exists); err != nil {
			return res, fmt.Errorf("look up sequence %s on target: %w", t.Key(), err)
		}
		if !exists {
			missing = append(missing, t.Key())
			continue
		}
		nv := v + margin
		if margin > 0 {
			called = true
		}
		if _, err := dst.Exec(ctx, "SELECT setval($1::regclass, $2, $3)", t.String(), nv, called); err != nil {
			return res, fmt.Errorf("set sequence %s on target to %d: %w", t.Key(), nv, err)
		}
		r := SequenceResult{Sequence: t.Key(), Value: nv, Called: called}
		res = append(res, r)
		if out != nil {
			fmt.Fprintf(out, "%s\t%d\n", r.Sequence, r.Value)
		}
	}
	if len(missing) > 0 {
		return res, fmt.Errorf("%d sequence(s) missing on the target: %v", len(missing), missing)
	}
	return res, nil
}

// sequencesSQL lists the sequences with the table owning them (serial, identity, OWNED BY), if any.
const sequencesSQL = `SELECT n.nspname, c.relname, tn.nspname, tc.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (SELECT d.refobjid FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
  AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i') LIMIT 1) o ON true
LEFT JOIN pg_class tc ON tc.oid = o.refobjid LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace
WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog','information_schema') AND NOT n.nspname = ANY($1)
ORDER BY 1, 2`

// selectSequences lists the source sequences the filter selects: a sequence owned by a table
// follows that table (a partition's, its root), any other its schema (-n, -N). The table
// patterns are checked against the source's tables first (catalog.Filter.Resolve).
func selectSequences(ctx context.Context, src *pgx.Conn, f catalog.Filter, skipSchemas []string) ([]ident.Table, error) {
	all, err := catalog.ListTables(ctx, src, skipSchemas...)
	if err != nil {
		return nil, err
	}
	if f, err = f.Resolve(all); err != nil {
		return nil, err
	}
	roots := map[string]ident.Table{}
	for _, t := range all {
		if t.Root != nil {
			roots[t.Key()] = *t.Root
		}
	}
	rows, err := src.Query(ctx, sequencesSQL, skipSchemas)
	if err != nil {
		return nil, fmt.Errorf("list source sequences: %w", err)
	}
	var out []ident.Table
	var seq ident.Table
	var ownerSchema, ownerName *string
	_, err = pgx.ForEachRow(rows, []any{&seq.Schema, &seq.Name, &ownerSchema, &ownerName}, func() error {
		if ownerName == nil {
			if f.MatchSchema(seq.Schema) {
				out = append(out, seq)
			}
			return nil
		}
		owner := ident.Table{Schema: *ownerSchema, Name: *ownerName}
		if r, ok := roots[owner.Key()]; ok {
			owner = r
		}
		if f.MatchName(owner.Schema, owner.Name) {
			out = append(out, seq)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list source sequences: %w", err)
	}
	return out, nil
}
