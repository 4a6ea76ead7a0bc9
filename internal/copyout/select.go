package copyout

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catalog"
)

// selectTables lists the tables holding rows to copy: leaf tables (partitions stand for their
// partitioned parents) outside the capture and state schemas, chosen by filter.
func selectTables(ctx context.Context, conn *pgx.Conn, f catalog.Filter, skipSchemas ...string) ([]*catalog.Table, error) {
	all, err := catalog.ListTables(ctx, conn, skipSchemas...)
	if err != nil {
		return nil, err
	}
	if f, err = f.Resolve(all); err != nil {
		return nil, err
	}
	var out []*catalog.Table
	for _, t := range all {
		if !t.Leaf() || !f.Match(t) {
			continue
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no tables to copy: the source has no user tables matching the filters")
	}
	return out, nil
}
