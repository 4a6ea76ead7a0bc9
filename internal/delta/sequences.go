package delta

import (
	"context"
	"errors"
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
	rows, err := src.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog','information_schema') AND NOT n.nspname = ANY($1)
ORDER BY 1, 2`, skipSchemas)
	if err != nil {
		return nil, fmt.Errorf("list source sequences: %w", err)
	}
	type seq struct{ schema, name string }
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (seq, error) {
		var s seq
		return s, r.Scan(&s.schema, &s.name)
	})
	if err != nil {
		return nil, fmt.Errorf("list source sequences: %w", err)
	}
	var res []SequenceResult
	var missing []string
	for _, s := range list {
		if !f.MatchName(s.schema, s.name) {
			continue
		}
		t := ident.Table{Schema: s.schema, Name: s.name}
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
	if len(res) == 0 && len(list) > 0 {
		return res, errors.New("no sequence matched the filters")
	}
	return res, nil
}
