package delta

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/pgferry/pgferry/internal/ident"
)

// attachedPart is a partition attached to a captured table since the batch's start.
type attachedPart struct {
	from string // quoted partition, ONLY is added by the reader
	xid  string // the attaching transaction's xid
}

// attachCandidatesSQL lists the leaf partitions below $1 that became partitions in a transaction
// newer than the xid of $2 (a 64-bit txid): ax is the newest pg_inherits xmin on the path
// from the root, so attaching a sub-partitioned table counts for its leaves too. A partition
// whose DETACH CONCURRENTLY is pending (its pg_inherits row rewritten) is left out: it counts as
// detached (capture.RemovedPartitions).
const attachCandidatesSQL = `WITH RECURSIVE p(relid, ax) AS (
  SELECT i.inhrelid, i.xmin FROM pg_catalog.pg_inherits i WHERE i.inhparent = $1::text::oid AND ` + notPending + `
  UNION ALL SELECT i.inhrelid, CASE WHEN age(i.xmin) < age(p.ax) THEN i.xmin ELSE p.ax END
  FROM pg_catalog.pg_inherits i JOIN p ON i.inhparent = p.relid WHERE ` + notPending + `)
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), p.ax::text
FROM p JOIN pg_catalog.pg_class c ON c.oid = p.relid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND age(p.ax) < age(($2::text::bigint % 4294967296)::text::xid)`

// notPending is true for a pg_inherits row i that no DETACH CONCURRENTLY has marked (14+).
const notPending = `NOT coalesce((to_jsonb(i) ->> 'inhdetachpending')::boolean, false)`

// attachedRows finds the partitions attached to captured partitioned tables since fromXmin.
// ATTACH PARTITION of a table that holds rows fires no trigger: rows older than the attach
// were never captured, and only reading them repairs the target. A keyless table with such a
// partition is marked in truncated instead, for a reload as a whole (its rows have no key to
// upsert by). Tables truncated in the batch are reloaded anyway.
func (rd *batchRead) attachedRows(ctx context.Context, tables []*captured, truncated map[string]bool, fromXmin uint64) (map[string][]attachedPart, error) {
	out := map[string][]attachedPart{}
	for _, t := range tables {
		if !t.parted || truncated[t.name] {
			continue
		}
		args := [][]byte{[]byte(strconv.FormatUint(uint64(t.relid), 10)), []byte(strconv.FormatUint(fromXmin, 10))}
		var parts []attachedPart
		if err := queryText(ctx, rd.pc, attachCandidatesSQL, args, func(v [][]byte) error {
			parts = append(parts, attachedPart{from: string(v[0]), xid: string(v[1])})
			return nil
		}); err != nil {
			return nil, fmt.Errorf("look for partitions attached to %s: %w", t.name, err)
		}
		if len(parts) == 0 {
			continue
		}
		if t.keyless {
			truncated[t.name] = true
			continue
		}
		out[t.name] = parts
	}
	return out, nil
}

// reloadAttached writes an upsert for every row of the attached partitions that is older than
// its attach (its xmin is not newer than the attaching transaction's) and whose key has no
// change in the batch (keyedChanges writes those), read in the batch's snapshot. The unqualified
// txid of inRange is the delta table's, the innermost one that has it.
func (rd *batchRead) reloadAttached(ctx context.Context, t *captured, parts []attachedPart) error {
	on := make([]string, len(t.keyCols))
	for i, k := range t.keyCols {
		on[i] = "d." + ident.Quote(k) + " = p." + ident.Quote(k)
	}
	sel := make([]string, len(t.cols))
	for i, c := range t.cols {
		sel[i] = "p." + ident.Quote(c)
	}
	for _, part := range parts {
		q := fmt.Sprintf(`SELECT %s FROM ONLY %s p WHERE age(p.xmin) >= age($5::text::xid)
  AND NOT EXISTS (SELECT 1 FROM %s d WHERE %s AND %s)`, strings.Join(sel, ", "), part.from, t.delta, strings.Join(on, " AND "), inRange)
		args := append(append([][]byte{}, rd.args...), []byte(part.xid))
		if err := queryText(ctx, rd.pc, q, args, func(v [][]byte) error {
			if err := rd.out.begin(); err != nil {
				return err
			}
			if err := rd.out.sink.Upsert(t.name, t.cols, v); err != nil {
				return err
			}
			return rd.out.count()
		}); err != nil {
			return fmt.Errorf("read rows of %s attached to %s: %w", part.from, t.name, err)
		}
	}
	return nil
}
