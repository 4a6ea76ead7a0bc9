package delta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/ident"
)

// What the target does with a partition the source dropped (--partition-removed).
const (
	PartitionFollow = "follow" // detach and drop it, as the source did (a detached one is detached only)
	PartitionKeep   = "keep"   // detach it and keep its table with its rows, never drop it
)

// ParsePartitionRemoved checks a --partition-removed value ("" is follow).
func ParsePartitionRemoved(s string) (string, error) {
	switch s {
	case "", PartitionFollow:
		return PartitionFollow, nil
	case PartitionKeep:
		return PartitionKeep, nil
	}
	return "", fmt.Errorf("unknown value %q: use follow (the target drops what the source dropped) or keep (the target keeps its rows as a table of its own)", s)
}

// removedPartitions writes, before any other record of the batch, a detach_partition or
// drop_partition record for every partition recorded at install that the batch's snapshot no
// longer sees in its table's tree. The changes captured before a detach are in the parent's
// delta table, but the parent no longer returns those rows: for a detached partition they are
// read from the partition itself (lastChanges) and written under its own name, so the target's
// copy of it ends as the source's was when it left. The parent's own records follow and leave
// the target's parent as the source's. Without a key, without the right to read the detached
// table, or with its columns changed since, only the parent is followed.
func (rd *batchRead) removedPartitions(ctx context.Context, q capture.Querier, captureSchema string, tables []*captured) error {
	removed, err := capture.RemovedPartitions(ctx, q, captureSchema)
	if err != nil {
		return err
	}
	byName := map[string]*captured{}
	for _, t := range tables {
		byName[t.name] = t
	}
	for _, p := range removed {
		t := byName[p.Table]
		if t == nil {
			continue
		}
		if err := rd.out.begin(); err != nil {
			return err
		}
		rd.out.res.Removed = append(rd.out.res.Removed, p)
		if err := rd.out.sink.RemovePartition(t.name, p.Partition, p.Dropped); err != nil {
			return err
		}
		if p.Dropped || p.Nested || t.keyless || !p.Readable || !containsAll(p.Columns, t.cols) {
			continue
		}
		if err := rd.lastChanges(ctx, t, p); err != nil {
			return err
		}
	}
	return nil
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// lastChanges writes, for each key of the parent changed in the batch, the detached partition's
// row as upsert when it is not newer than the detach (its xmin is not newer than the xmin of the
// partition's pg_class row, which the DETACH rewrote), or a delete when the partition has no such
// row. A row changed after the detach (the standalone table is no longer followed) is left out.
func (rd *batchRead) lastChanges(ctx context.Context, t *captured, p capture.RemovedPartition) error {
	nk := len(t.keyCols)
	dk, on, sel := keyJoin(t, "p")
	q := fmt.Sprintf(`SELECT %s, p.%s IS NOT NULL, coalesce(age(p.xmin) >= age($5::text::xid), false), %s
FROM (SELECT DISTINCT %s FROM %s WHERE %s) d
LEFT JOIN %s p ON %s`, strings.Join(dk, ", "), ident.Quote(t.keyCols[0]), strings.Join(sel, ", "),
		ident.QuoteList(t.keyCols), t.delta, inRange, p.Quoted, strings.Join(on, " AND "))
	args := append(append([][]byte{}, rd.args...), []byte(p.Xmin))
	if err := queryText(ctx, rd.pc, q, args, func(v [][]byte) error {
		var err error
		switch {
		case string(v[nk]) != "t":
			err = rd.out.sink.Delete(p.Partition, t.keyCols, v[:nk])
		case string(v[nk+1]) == "t":
			err = rd.out.sink.Upsert(p.Partition, t.cols, v[nk+2:])
		default:
			return nil
		}
		if err != nil {
			return err
		}
		return rd.out.count()
	}); err != nil {
		return fmt.Errorf("read the last changes of %s, detached from %s: %w", p.Partition, t.name, err)
	}
	return nil
}

// targetPartitionSQL says whether the partition $2 (quoted) exists on the target, and its parent
// (quoted) when that parent is $1 (quoted) or a partition below it; NULL when it is no longer
// in $1's tree (detached already: a re-run; or never attached there) or $1 does not exist.
const targetPartitionSQL = `WITH RECURSIVE tree(relid) AS (SELECT to_regclass($1)::oid
  UNION ALL SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.relid)
SELECT to_regclass($2) IS NOT NULL,
  (SELECT i.inhparent::regclass::text FROM pg_catalog.pg_inherits i
   WHERE i.inhrelid = to_regclass($2) AND i.inhparent IN (SELECT relid FROM tree))`

// targetPartition runs targetPartitionSQL for the quoted table and partition.
func targetPartition(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, table, partition string) (exists bool, parent *string, err error) {
	err = q.QueryRow(ctx, targetPartitionSQL, table, partition).Scan(&exists, &parent)
	return exists, parent, err
}

// RemovePartition applies a detach_partition (dropped false) or drop_partition record: the
// partition is detached from its parent on the target, then dropped if the source dropped it and
// PartitionRemoved is follow. A partition no longer in the table's tree on the target is left as
// it is (a batch applied again, or the operator did it already); one missing on the target has
// the batch's records for it skipped.
func (a *Applier) RemovePartition(ctx context.Context, table, partition string, dropped bool) error {
	if a.tx == nil {
		return errors.New("partition removal outside a batch (no begin record before it)")
	}
	t, err := a.table(ctx, table)
	if err != nil {
		return err
	}
	pt, err := ident.ParseKey(partition)
	if err != nil {
		return &DriftError{Table: table, Err: fmt.Errorf("partition %q: %w", partition, err)}
	}
	exists, parent, err := targetPartition(ctx, a.tx, t.plain, pt.String())
	if err != nil {
		return fmt.Errorf("look up partition %s of %s on the target: %w", partition, table, err)
	}
	if !exists {
		if a.missing == nil {
			a.missing = map[string]bool{}
		}
		a.missing[partition] = true
		return nil
	}
	if parent == nil {
		return nil
	}
	if _, err := a.tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DETACH PARTITION %s", *parent, pt)); err != nil {
		return fmt.Errorf("detach partition %s of %s on the target: %w", partition, table, err)
	}
	did := "detached"
	if dropped && a.PartitionRemoved != PartitionKeep {
		if _, err := a.tx.Exec(ctx, "DROP TABLE "+pt.String()); err != nil {
			return fmt.Errorf("drop partition %s of %s on the target (the source dropped it): %w; drop what depends on it there, or keep it with --partition-removed keep", partition, table, err)
		}
		did = "detached and dropped"
	}
	if a.Log != nil {
		src := "detached"
		if dropped {
			src = "dropped"
		}
		fmt.Fprintf(a.Log, "pgdelta: %s: partition %s %s on the target (%s on the source)\n", table, partition, did, src)
	}
	return nil
}

// forgetRemovedPartitions is the source-side bookkeeping after the target committed batches:
// it removes from the source's registry the partitions removed on the source that the target no
// longer holds in the table's tree, so later batches do not see them again. With several
// targets registered it forgets nothing (another target may not have applied the removal yet;
// seeing it again is a no-op on a target that did). Safe to repeat; a crash before it only
// makes the next batch emit the removal again.
func forgetRemovedPartitions(ctx context.Context, src, dst *pgx.Conn, captureSchema string, log io.Writer) (int64, error) {
	removed, err := capture.RemovedPartitions(ctx, src, orDefault(captureSchema))
	if err != nil || len(removed) == 0 {
		return 0, err
	}
	regs, _, err := catchup.ListTargets(ctx, src, captureSchema)
	if err != nil || len(regs) > 1 {
		return 0, err
	}
	var done []capture.RemovedPartition
	for _, r := range removed {
		rt, err1 := ident.ParseKey(r.Table)
		pt, err2 := ident.ParseKey(r.Partition)
		if err := errors.Join(err1, err2); err != nil {
			return 0, err
		}
		_, parent, err := targetPartition(ctx, dst, rt.String(), pt.String())
		if err != nil {
			return 0, fmt.Errorf("look up partition %s of %s on the target: %w", r.Partition, r.Table, err)
		}
		if parent == nil {
			done = append(done, r)
		}
	}
	n, err := capture.ForgetPartitions(ctx, src, orDefault(captureSchema), done)
	if n > 0 && log != nil {
		fmt.Fprintf(log, "pgdelta: %d removed partition(s) applied to the target and forgotten in the capture registry\n", n)
	}
	return n, err
}
