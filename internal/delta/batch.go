package delta

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
}

// BatchResult describes a batch read.
type BatchResult struct {
	From, To  string
	Rows      int64 // upsert + delete records
	Truncates int
	Emitted   bool // the batch was written to the sink (non-empty, or emitEmpty)
}

// Batch reads batch (from, S] where S is the snapshot of a new REPEATABLE READ transaction and
// writes it to sink. An empty batch is written only when emitEmpty is set.
func (r *Reader) Batch(ctx context.Context, from string, sink Sink, emitEmpty bool) (BatchResult, error) {
	res := BatchResult{From: from}
	p, err := ParseSnapshot(from)
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
	s, err := ParseSnapshot(res.To)
	if err != nil {
		return res, err
	}
	if s.Equal(p) {
		return res, nil
	}
	tables, err := r.registry(ctx, tx)
	if err != nil {
		return res, err
	}
	lo, hi := strconv.FormatUint(p.Xmin, 10), strconv.FormatUint(s.Xmax, 10)
	inRange := "txid >= $1 AND txid < $2 AND txid_visible_in_snapshot(txid, $3::text::txid_snapshot) AND NOT txid_visible_in_snapshot(txid, $4::text::txid_snapshot)"
	args := [][]byte{[]byte(lo), []byte(hi), []byte(res.To), []byte(from)}

	// A TRUNCATE of one partition is recorded under the captured root (captured_table): the root is
	// truncated and reloaded as a whole on the target, which is correct if heavier than needed.
	truncated := map[string]bool{}
	cs := ident.Quote(orDefault(r.CaptureSchema))
	if err := queryText(ctx, tx.Conn().PgConn(), "SELECT DISTINCT coalesce(captured_table, table_name) FROM "+cs+".truncates WHERE "+inRange, args, func(v [][]byte) error {
		truncated[string(v[0])] = true
		return nil
	}); err != nil {
		return res, fmt.Errorf("read truncates: %w", err)
	}

	began := false
	begin := func() error {
		if began {
			return nil
		}
		began = true
		res.Emitted = true
		return sink.Begin(from, res.To, at.UTC().Format(time.RFC3339Nano))
	}
	var sinceFlush int64
	count := func() error {
		res.Rows++
		sinceFlush++
		if r.MaxBatch > 0 && sinceFlush >= r.MaxBatch {
			sinceFlush = 0
			return sink.FlushPoint()
		}
		return nil
	}
	for _, t := range tables {
		if !truncated[t.name] {
			continue
		}
		if err := begin(); err != nil {
			return res, err
		}
		res.Truncates++
		if err := sink.Truncate(t.name); err != nil {
			return res, err
		}
		// A TRUNCATE removes rows whose keys were never captured: reload the whole table as of S.
		q := fmt.Sprintf("SELECT %s FROM %s", ident.QuoteList(t.cols), t.from)
		if err := queryText(ctx, tx.Conn().PgConn(), q, nil, func(v [][]byte) error {
			if err := sink.Upsert(t.name, t.cols, v); err != nil {
				return err
			}
			return count()
		}); err != nil {
			return res, fmt.Errorf("reload truncated %s: %w", t.name, err)
		}
	}
	for _, t := range tables {
		if truncated[t.name] {
			continue
		}
		nk := len(t.keyCols)
		dk := make([]string, nk)
		on := make([]string, nk)
		for i, k := range t.keyCols {
			dk[i] = "d." + ident.Quote(k)
			on[i] = "t." + ident.Quote(k) + " = d." + ident.Quote(k)
		}
		sel := make([]string, len(t.cols))
		for i, c := range t.cols {
			sel[i] = "t." + ident.Quote(c)
		}
		q := fmt.Sprintf(`SELECT %s, t.%s IS NOT NULL, %s
FROM (SELECT DISTINCT %s FROM %s WHERE %s) d
LEFT JOIN %s t ON %s`, strings.Join(dk, ", "), ident.Quote(t.keyCols[0]), strings.Join(sel, ", "),
			ident.QuoteList(t.keyCols), t.delta, inRange, t.from, strings.Join(on, " AND "))
		if err := queryText(ctx, tx.Conn().PgConn(), q, args, func(v [][]byte) error {
			if err := begin(); err != nil {
				return err
			}
			if string(v[nk]) == "t" {
				if err := sink.Upsert(t.name, t.cols, v[nk+1:]); err != nil {
					return err
				}
			} else if err := sink.Delete(t.name, t.keyCols, v[:nk]); err != nil {
				return err
			}
			return count()
		}); err != nil {
			return res, fmt.Errorf("read changes of %s: %w", t.name, err)
		}
	}
	if !began && emitEmpty {
		if err := begin(); err != nil {
			return res, err
		}
	}
	if began {
		if err := sink.Commit(res.To, res.Rows); err != nil {
			return res, err
		}
	}
	return res, tx.Commit(ctx)
}

// registry lists captured tables with their stored columns as the batch's transaction sees them.
func (r *Reader) registry(ctx context.Context, tx pgx.Tx) ([]*captured, error) {
	cs := ident.Quote(orDefault(r.CaptureSchema))
	stored := pgver.Of(tx.Conn()).StoredColumn("a")
	rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT ct.table_name, ct.delta_table, ct.key_columns, c.relkind::text,
  EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid) AS has_children,
  quote_ident(n.nspname) || '.' || quote_ident(c.relname),
  (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND %s)
FROM %s.capture_tables ct JOIN pg_class c ON c.oid = ct.relid JOIN pg_namespace n ON n.oid = c.relnamespace
ORDER BY ct.table_name`, stored, cs))
	if err != nil {
		return nil, fmt.Errorf("read %s.capture_tables on source: %w", orDefault(r.CaptureSchema), err)
	}
	defer rows.Close()
	var out []*captured
	for rows.Next() {
		var t captured
		var kind string
		var children bool
		if err := rows.Scan(&t.name, &t.delta, &t.keyCols, &kind, &children, &t.from, &t.cols); err != nil {
			return nil, fmt.Errorf("read capture_tables: %w", err)
		}
		t.delta = cs + "." + ident.Quote(t.delta)
		if kind == "r" && children {
			t.from = "ONLY " + t.from
		}
		if len(t.keyCols) == 0 {
			return nil, fmt.Errorf("capture_tables: %s has no key columns", t.name)
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
