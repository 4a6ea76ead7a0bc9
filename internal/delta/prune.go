package delta

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/ident"
)

// Prune deletes the source's delta rows (and truncate records) visible in pos, the position the
// target has confirmed, and returns how many rows it removed. One table per transaction.
func Prune(ctx context.Context, src *pgx.Conn, captureSchema, pos string) (int64, error) {
	p, err := catchup.ParseSnapshot(pos)
	if err != nil {
		return 0, err
	}
	cs := ident.Quote(orDefault(captureSchema))
	rows, err := src.Query(ctx, "SELECT delta_table FROM "+cs+".capture_tables ORDER BY table_name")
	if err != nil {
		return 0, fmt.Errorf("read %s.capture_tables on source: %w", orDefault(captureSchema), err)
	}
	deltas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("read capture_tables: %w", err)
	}
	var total int64
	xmax := fmt.Sprint(p.Xmax)
	for _, d := range append(deltas, "truncates") {
		tag, err := src.Exec(ctx, fmt.Sprintf("DELETE FROM %s.%s WHERE txid < $1 AND txid_visible_in_snapshot(txid, $2::text::txid_snapshot)", cs, ident.Quote(d)), xmax, pos)
		if err != nil {
			return total, fmt.Errorf("prune %s.%s: %w", orDefault(captureSchema), d, err)
		}
		total += tag.RowsAffected()
	}
	return total, nil
}

// PruneTarget registers the target dst on src at its confirmed position and prunes what every
// registered target holds. Before any batch was applied it only registers (pruned is "").
func PruneTarget(ctx context.Context, src, dst *pgx.Conn, captureSchema, stateSchema, targetURL string, log io.Writer) (n int64, pruned string, err error) {
	pos, err := catchup.TargetPosition(ctx, dst, stateSchema)
	if err != nil {
		return 0, "", err
	}
	if pos.Position == "" {
		return 0, "", catchup.ErrNoPosition
	}
	reg, err := RegisterHere(ctx, src, dst, captureSchema, stateSchema, targetURL, pos.Position, log)
	if err != nil {
		return 0, "", err
	}
	if reg == nil {
		return 0, "", errors.New("prune delta tables: this target cannot be registered on the source, and pruning without it could remove changes it needs")
	}
	if pos.Origin != "apply" {
		return 0, "", nil
	}
	if _, err := forgetRemovedPartitions(ctx, src, dst, captureSchema, log); err != nil {
		return 0, "", err
	}
	n, pruned, err = PruneFor(ctx, src, captureSchema, *reg)
	return n, pruned, prunedError(err)
}

// orDefault is the schema name s, or pgferry's default when s is empty.
func orDefault(s string) string { return catchup.OrDefault(s) }

func quotedCS(captureSchema string) string { return ident.Quote(orDefault(captureSchema)) }
