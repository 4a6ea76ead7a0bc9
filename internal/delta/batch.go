package delta

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/pgver"
)

// Reader reads snapshot batches of captured changes from the source.
type Reader struct {
	Conn          *pgx.Conn
	CaptureSchema string
	MaxBatch      int64 // rows between flush points inside one batch; 0 = no limit
}

// captured is one row of capture_tables with what a batch needs to read it.
type captured struct {
	name    string   // unquoted schema.table
	delta   string   // quoted delta table, schema-qualified
	keyCols []string // key column names
	from    string   // quoted table, with ONLY for inheritance parents
	cols    []string // stored columns in attnum order
	keyless bool     // no key: keyCols are every stored column, the delta holds whole rows
	exact   []bool   // keyless: per column, NOT NULL with an identity = (sameRowSQL)
	relid   uint32   // the table's oid
	parted  bool     // a partitioned table: partitions may be attached with rows (attach.go)
}

// BatchResult describes a batch read.
type BatchResult struct {
	From, To  string
	Rows      int64 // upsert + delete records
	Truncates int
	Emitted   bool                       // the batch was written to the sink (non-empty, or emitEmpty)
	Removed   []capture.RemovedPartition // partitions detached or dropped on the source, written first (detach.go)
	At        time.Time                  // source clock at the batch's snapshot
}

// Batch reads batch (from, S] where S is the snapshot of a new REPEATABLE READ transaction and
// writes it to sink. An empty batch is written only when emitEmpty is set.
func (r *Reader) Batch(ctx context.Context, from string, sink Sink, emitEmpty bool) (BatchResult, error) {
	res := BatchResult{From: from}
	p, err := catchup.ParseSnapshot(from)
	if err != nil {
		return res, err
	}
	tx, err := r.Conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return res, fmt.Errorf("begin source transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// The first statement fixes the transaction's snapshot: S is the snapshot every read below sees.
	var at time.Time
	if err := tx.QueryRow(ctx, "SELECT txid_current_snapshot()::text, clock_timestamp()").Scan(&res.To, &at); err != nil {
		return res, fmt.Errorf("take batch snapshot: %w", err)
	}
	res.At = at
	s, err := catchup.ParseSnapshot(res.To)
	if err != nil {
		return res, err
	}
	if s.Equal(p) {
		return res, nil
	}
	removed, err := stopOnDrift(ctx, tx, orDefault(r.CaptureSchema))
	if err != nil {
		return res, err
	}
	tables, err := r.registry(ctx, tx)
	if err != nil {
		return res, err
	}
	out := &batchOut{sink: sink, res: &res, at: at.UTC().Format(time.RFC3339Nano), maxBatch: r.MaxBatch}
	rd := &batchRead{pc: tx.Conn().PgConn(), out: out,
		args: [][]byte{[]byte(strconv.FormatUint(p.Xmin, 10)), []byte(strconv.FormatUint(s.Xmax, 10)), []byte(res.To), []byte(from)}}
	if removed {
		if err := rd.removedPartitions(ctx, tx, orDefault(r.CaptureSchema), tables); err != nil {
			return res, err
		}
	}
	truncated, err := rd.truncated(ctx, orDefault(r.CaptureSchema))
	if err != nil {
		return res, err
	}
	attached, err := rd.attachedRows(ctx, tables, truncated, p.Xmin)
	if err != nil {
		return res, err
	}
	if err := rd.changes(ctx, tables, truncated, attached); err != nil {
		return res, err
	}
	if !out.began && emitEmpty {
		if err := out.begin(); err != nil {
			return res, err
		}
	}
	if out.began {
		if err := sink.Commit(res.To, res.Rows); err != nil {
			return res, err
		}
	}
	return res, tx.Commit(ctx)
}

// changes writes the batch's records of every table: first the truncated tables' reloads, then
// the changes of the others (with the rows of partitions attached since, for those that have).
func (rd *batchRead) changes(ctx context.Context, tables []*captured, truncated map[string]bool, attached map[string][]attachedPart) error {
	for _, t := range tables {
		if truncated[t.name] {
			if err := rd.reload(ctx, t); err != nil {
				return err
			}
		}
	}
	for _, t := range tables {
		var err error
		switch {
		case truncated[t.name]:
		case attached[t.name] != nil:
			err = rd.reloadAttached(ctx, t, attached[t.name])
			if err == nil {
				err = rd.keyedChanges(ctx, t)
			}
		case t.keyless:
			err = rd.keylessChanges(ctx, t)
		default:
			err = rd.keyedChanges(ctx, t)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// stopOnDrift returns the *capture.DriftError (exit 3) of a schema change the capture cannot
// follow, as the batch's snapshot sees it, so the batch stops before anything is read. A
// partition detached or dropped is followed instead: removed says there is one (a partition
// missing by name, which covers every one missing by oid), and removedPartitions reads which.
func stopOnDrift(ctx context.Context, tx pgx.Tx, captureSchema string) (removed bool, err error) {
	drifts, err := capture.DetectDrift(ctx, tx, captureSchema)
	if err != nil {
		return false, err
	}
	n := len(drifts)
	drifts = slices.DeleteFunc(drifts, func(d capture.Drift) bool { return d.Kind == capture.DriftDetached })
	return len(drifts) < n, capture.DriftFailure(captureSchema, drifts)
}

// batchOut writes one batch to its sink: begin on the first record, flush points every maxBatch.
type batchOut struct {
	sink       Sink
	res        *BatchResult
	at         string
	maxBatch   int64
	sinceFlush int64
	began      bool
}

func (o *batchOut) begin() error {
	if o.began {
		return nil
	}
	o.began = true
	o.res.Emitted = true
	return o.sink.Begin(o.res.From, o.res.To, o.at)
}

// count counts a record just written and writes a flush point every maxBatch records.
func (o *batchOut) count() error {
	o.res.Rows++
	o.sinceFlush++
	if o.maxBatch > 0 && o.sinceFlush >= o.maxBatch {
		o.sinceFlush = 0
		return o.sink.FlushPoint()
	}
	return nil
}

// batchRead runs the reads of one batch inside its transaction; args are the parameters of
// inRange: xmin(from), xmax(to), to, from.
type batchRead struct {
	pc   *pgconn.PgConn
	out  *batchOut
	args [][]byte
}

// inRange selects the delta rows (or truncate records) of the batch.
const inRange = "txid >= $1 AND txid < $2 AND txid_visible_in_snapshot(txid, $3::text::txid_snapshot) AND NOT txid_visible_in_snapshot(txid, $4::text::txid_snapshot)"

// truncated returns the captured tables truncated in the batch. A TRUNCATE of one partition is
// recorded under the captured root (captured_table): the root is truncated and reloaded as a
// whole on the target, which is correct if heavier than needed.
func (rd *batchRead) truncated(ctx context.Context, captureSchema string) (map[string]bool, error) {
	truncated := map[string]bool{}
	q := "SELECT DISTINCT coalesce(captured_table, table_name) FROM " + ident.Quote(captureSchema) + ".truncates WHERE " + inRange
	if err := queryText(ctx, rd.pc, q, rd.args, func(v [][]byte) error {
		truncated[string(v[0])] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read truncates: %w", err)
	}
	return truncated, nil
}

// reload writes a truncate record and the table's whole content as of S: a TRUNCATE removes rows
// whose keys were never captured, so only a full reload repairs it.
func (rd *batchRead) reload(ctx context.Context, t *captured) error {
	if err := rd.out.begin(); err != nil {
		return err
	}
	rd.out.res.Truncates++
	if err := rd.out.sink.Truncate(t.name); err != nil {
		return err
	}
	if t.keyless {
		return rd.keylessReload(ctx, t)
	}
	q := fmt.Sprintf("SELECT %s FROM %s", ident.QuoteList(t.cols), t.from)
	if err := queryText(ctx, rd.pc, q, nil, func(v [][]byte) error {
		if err := rd.out.sink.Upsert(t.name, t.cols, v); err != nil {
			return err
		}
		return rd.out.count()
	}); err != nil {
		return fmt.Errorf("reload truncated %s: %w", t.name, err)
	}
	return nil
}

// keyedChanges writes, for every key changed in the batch, its current row or its absence.
func (rd *batchRead) keyedChanges(ctx context.Context, t *captured) error {
	nk := len(t.keyCols)
	dk, on, sel := keyJoin(t, "t")
	q := fmt.Sprintf(`SELECT %s, t.%s IS NOT NULL, %s
FROM (SELECT DISTINCT %s FROM %s WHERE %s) d
LEFT JOIN %s t ON %s`, strings.Join(dk, ", "), ident.Quote(t.keyCols[0]), strings.Join(sel, ", "),
		ident.QuoteList(t.keyCols), t.delta, inRange, t.from, strings.Join(on, " AND "))
	if err := queryText(ctx, rd.pc, q, rd.args, func(v [][]byte) error {
		if err := rd.out.begin(); err != nil {
			return err
		}
		if string(v[nk]) == "t" {
			if err := rd.out.sink.Upsert(t.name, t.cols, v[nk+1:]); err != nil {
				return err
			}
		} else if err := rd.out.sink.Delete(t.name, t.keyCols, v[:nk]); err != nil {
			return err
		}
		return rd.out.count()
	}); err != nil {
		return fmt.Errorf("read changes of %s: %w", t.name, err)
	}
	return nil
}

// keyJoin returns, for reading the rows of the keys in a delta table d from a table aliased as
// alias, d's key columns, the join condition per key column, and alias's columns.
func keyJoin(t *captured, alias string) (dk, on, sel []string) {
	dk, on = make([]string, len(t.keyCols)), make([]string, len(t.keyCols))
	for i, k := range t.keyCols {
		dk[i] = "d." + ident.Quote(k)
		on[i] = alias + "." + ident.Quote(k) + " = d." + ident.Quote(k)
	}
	sel = make([]string, len(t.cols))
	for i, c := range t.cols {
		sel[i] = alias + "." + ident.Quote(c)
	}
	return dk, on, sel
}

// registry lists captured tables with their stored columns as the batch's transaction sees them.
func (r *Reader) registry(ctx context.Context, tx pgx.Tx) ([]*captured, error) {
	cs := ident.Quote(orDefault(r.CaptureSchema))
	v := pgver.Of(tx.Conn())
	rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT ct.table_name, ct.delta_table, ct.key_columns, c.relkind::text, c.oid,
  EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid) AS has_children,
  quote_ident(n.nspname) || '.' || quote_ident(c.relname),
  (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND %[1]s),
  ct.keyless,
  CASE WHEN ct.keyless THEN (SELECT array_agg(a.attnotnull AND %[2]s ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND %[1]s) END
FROM %[3]s.capture_tables ct JOIN pg_class c ON c.oid = ct.relid JOIN pg_namespace n ON n.oid = c.relnamespace
ORDER BY ct.table_name`, v.StoredColumn("a"), catalog.IdentitySQL(v, "a"), cs))
	if err != nil {
		return nil, fmt.Errorf("read %s.capture_tables on source: %w", orDefault(r.CaptureSchema), err)
	}
	defer rows.Close()
	var out []*captured
	for rows.Next() {
		var t captured
		var kind string
		var children bool
		if err := rows.Scan(&t.name, &t.delta, &t.keyCols, &kind, &t.relid, &children, &t.from, &t.cols, &t.keyless, &t.exact); err != nil {
			return nil, fmt.Errorf("read capture_tables: %w", err)
		}
		t.delta = cs + "." + ident.Quote(t.delta)
		t.parted = kind == "p"
		if kind == "r" && children {
			t.from = "ONLY " + t.from
		}
		if len(t.keyCols) == 0 {
			return nil, fmt.Errorf("capture_tables: %s has no key columns", t.name)
		}
		if t.keyless && !slices.Equal(t.keyCols, t.cols) {
			return nil, fmt.Errorf("table %s has columns %v now but %v when its capture as whole rows was installed: re-run 'pgtrig install' and copy the table again", t.name, t.cols, t.keyCols)
		}
		out = append(out, &t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read capture_tables: %w", err)
	}
	if len(out) == 0 {
		var n int
		_ = tx.QueryRow(ctx, "SELECT count(*) FROM "+cs+".capture_tables").Scan(&n)
		if n > 0 {
			return nil, fmt.Errorf("capture_tables lists %d tables but none exists any more (dropped?)", n)
		}
	}
	return out, nil
}

// queryText runs sql with text parameters and calls fn with each row's raw text values
// (nil for NULL), streaming: values are only valid during the call.
func queryText(ctx context.Context, pc *pgconn.PgConn, sql string, args [][]byte, fn func([][]byte) error) error {
	rr := pc.ExecParams(ctx, sql, args, nil, nil, nil)
	var ferr error
	for rr.NextRow() {
		if ferr != nil {
			continue
		}
		ferr = fn(rr.Values())
	}
	_, err := rr.Close()
	if ferr != nil {
		return ferr
	}
	return err
}
