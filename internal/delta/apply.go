package delta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/catchup"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/state"
)

// Sink receives one batch at a time: Begin, then upserts, deletes, rows (tables without a key)
// and truncates (with optional flush points), then Commit. Both the JSON writer and the target
// Applier are sinks.
type Sink interface {
	Begin(from, to, at string) error
	Upsert(table string, cols []string, vals [][]byte) error
	Delete(table string, cols []string, vals [][]byte) error
	Rows(table string, cols []string, vals [][]byte, count int64) error
	Truncate(table string) error
	RemovePartition(table, partition string, dropped bool) error
	FlushPoint() error
	Commit(to string, rows int64) error
}

// DriftError reports a record that does not fit the target's tables (schema drift or bad input).
type DriftError struct {
	Table string
	Err   error
}

func (e *DriftError) Error() string { return fmt.Sprintf("table %s: %v", e.Table, e.Err) }
func (e *DriftError) Unwrap() error { return e.Err }

// GapError reports a batch that starts after the target's position: applying it would lose changes.
type GapError struct{ From, Target string }

func (e *GapError) Error() string {
	return fmt.Sprintf("batch starts at %s but the target stands at %s: changes in between would be lost", e.From, e.Target)
}

// Applier applies batches to the target: per table, DELETE of every key of the batch, then INSERT
// of the present rows staged with COPY, and the batch's end position, all in one transaction.
type Applier struct {
	conn        *pgx.Conn
	stateSchema string
	tables      map[string]*targetTable
	stages      map[string]*stage
	order       []*stage // stages touched in this transaction, in first-touch order
	stageSeq    int

	tx       pgx.Tx
	from, to string
	at       time.Time
	rows     int64
	started  time.Time
	buffered int

	known    string // position the target stands at ("" = unknown, accept any batch)
	NoCheck  bool   // skip the gap check
	Batches  int64  // batches committed by this Applier
	Rows     int64  // rows committed by this Applier
	LastTo   string // position of the last committed batch
	OnCommit func(to string, rows int64, took time.Duration)
	// PartitionRemoved is what a partition dropped on the source becomes on the target:
	// PartitionFollow ("" too) or PartitionKeep (detach.go). Log, if set, says each removal done.
	PartitionRemoved string
	Log              io.Writer
	missing          map[string]bool // partitions removed on the source and missing on the target: their records are skipped
}

type targetTable struct {
	name     string // unquoted schema.table
	sql      string // quoted name, with ONLY where inheritance children must be left alone
	plain    string // quoted name
	cols     []string
	colIdx   map[string]int
	exact    []bool       // per column: NOT NULL with an identity = (rows records match by it)
	key      []int        // indexes into cols
	rowCache mappingCache // last mapping of an upsert's columns
	keyCache mappingCache // last mapping of a delete's columns
}

type mappingCache struct {
	cols []string
	m    []int
}

type stage struct {
	t         *targetTable
	rows      bool   // stages rows records (column pgferry_count__), not upserts and deletes
	temp      string // temp table name
	created   bool   // created in the current transaction
	buf       bytes.Buffer
	onServer  bool // rows already copied in this transaction
	truncated bool
	touched   bool
	// A table of 1,600 columns leaves no room for the flag column (wide): its present rows are
	// staged without it (flagless) and its deletes apart, by their key alone (keysOnly).
	flagless, keysOnly bool
	idx                []int // the indexes of the table's columns the stage holds
}

// maxColumns is the most columns PostgreSQL allows in a table, a staging table included.
const maxColumns = 1600

// wide reports whether the table leaves no room for a staging table's extra column.
func (t *targetTable) wide() bool { return len(t.cols) >= maxColumns }

// keysSuffix names the stage of a wide table's deletes.
const keysSuffix = "\x00keys"

// Staging limits: a table's COPY buffer is sent at stageFlush bytes, all of them at totalFlush.
const (
	stageFlush = 1 << 20
	totalFlush = 32 << 20
)

// NewApplier prepares to apply to conn, whose pgferry state lives in stateSchema.
func NewApplier(ctx context.Context, conn *pgx.Conn, stateSchema string) (*Applier, error) {
	if err := state.EnsureApply(ctx, conn, stateSchema); err != nil {
		return nil, err
	}
	a := &Applier{conn: conn, stateSchema: stateSchema, stages: map[string]*stage{}}
	if err := a.loadTables(ctx); err != nil {
		return nil, err
	}
	pos, err := catchup.TargetPosition(ctx, conn, stateSchema)
	if err != nil {
		return nil, err
	}
	a.known = pos.Position
	return a, nil
}

func (a *Applier) loadTables(ctx context.Context) error {
	list, err := catalog.ListTables(ctx, a.conn, a.stateSchema)
	if err != nil {
		return fmt.Errorf("read target tables: %w", err)
	}
	a.tables = map[string]*targetTable{}
	for _, t := range list {
		if t.Partition {
			continue
		}
		tt := &targetTable{name: t.Key(), plain: t.String(), sql: t.String(), cols: t.ColumnNames(), colIdx: map[string]int{}}
		if t.Inherited && t.Kind == "r" {
			tt.sql = "ONLY " + t.String()
		}
		for i, c := range tt.cols {
			tt.colIdx[c] = i
			tt.exact = append(tt.exact, t.Columns[i].NotNull && t.Columns[i].Identity)
		}
		for _, k := range t.KeyColumns {
			tt.key = append(tt.key, tt.colIdx[k])
		}
		a.tables[tt.name] = tt
	}
	return nil
}

func (a *Applier) table(ctx context.Context, name string) (*targetTable, error) {
	if t := a.tables[name]; t != nil {
		return t, nil
	}
	// A table created since we started: look again once, outside any batch's statements.
	if err := a.loadTables(ctx); err != nil {
		return nil, err
	}
	t := a.tables[name]
	if t == nil {
		return nil, &DriftError{Table: name, Err: errors.New("no such table on the target (schema drift?); create it there (pgschema) and re-run")}
	}
	return t, nil
}

// Begin starts a batch. A Begin inside an open batch abandons it (the streamer restarted it).
func (a *Applier) Begin(ctx context.Context, from, to, at string) error {
	if a.tx != nil {
		a.rollback(ctx)
	}
	if !a.NoCheck && a.known != "" && from != "" {
		p, err := catchup.ParseSnapshot(from)
		if err != nil {
			return err
		}
		k, err := catchup.ParseSnapshot(a.known)
		if err != nil {
			return fmt.Errorf("target position: %w", err)
		}
		if !k.Covers(p) {
			return &GapError{From: from, Target: a.known}
		}
	}
	if _, err := catchup.ParseSnapshot(to); err != nil {
		return err
	}
	a.from, a.to, a.rows, a.started = from, to, 0, time.Now()
	a.missing = nil
	a.at = time.Time{}
	if at != "" {
		if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
			a.at = t
		}
	}
	return a.beginTx(ctx)
}

func (a *Applier) beginTx(ctx context.Context) error {
	tx, err := a.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin target transaction: %w", err)
	}
	a.tx = tx
	return nil
}

// InBatch reports whether a batch is open.
func (a *Applier) InBatch() bool { return a.tx != nil }

// stageKey names the stage of a table: one for upserts and deletes, one for rows records.
func stageKey(table string, rows bool) string {
	if rows {
		return table + "\x00rows"
	}
	return table
}

func (a *Applier) stageFor(ctx context.Context, t *targetTable, rows, present bool) (*stage, error) {
	others := []string{stageKey(t.name, !rows)}
	if rows {
		others = append(others, stageKey(t.name, false)+keysSuffix)
	}
	for _, k := range others {
		if o := a.stages[k]; o != nil && o.touched {
			return nil, &DriftError{Table: t.name, Err: errors.New("one batch has both rows records and upserts or deletes for it")}
		}
	}
	if rows && t.wide() {
		return nil, &DriftError{Table: t.name, Err: fmt.Errorf("a table of %d columns without a key cannot be staged (PostgreSQL allows %d columns); give it a primary key", len(t.cols), maxColumns)}
	}
	key := stageKey(t.name, rows)
	wide := !rows && t.wide()
	if wide && !present {
		key += keysSuffix
	}
	s := a.stages[key]
	if s == nil {
		a.stageSeq++
		s = &stage{t: t, rows: rows, temp: fmt.Sprintf("pgferry_stage_%d", a.stageSeq), flagless: wide, keysOnly: wide && !present}
		s.idx = t.key
		if !s.keysOnly {
			s.idx = make([]int, len(t.cols))
			for i := range s.idx {
				s.idx[i] = i
			}
		}
		sel := s.columns()
		if !s.flagless {
			sel += ", " + s.extra()
		}
		q := fmt.Sprintf(`CREATE TEMP TABLE %s ON COMMIT DELETE ROWS AS SELECT %s FROM %s WITH NO DATA`, s.temp, sel, t.plain)
		if _, err := a.tx.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("create staging table for %s: %w", t.name, err)
		}
		s.created = true
		a.stages[key] = s
	}
	if !s.touched {
		s.touched = true
		a.order = append(a.order, s)
	}
	return s, nil
}

// columns lists the quoted names of the table's columns the stage holds.
func (s *stage) columns() string {
	names := make([]string, len(s.idx))
	for i, c := range s.idx {
		names[i] = ident.Quote(s.t.cols[c])
	}
	return strings.Join(names, ", ")
}

// extra is the staging table's last column: the row's presence, or its count.
func (s *stage) extra() string {
	if s.rows {
		return "0::bigint AS pgferry_count__"
	}
	return "true AS pgferry_present__"
}

// Upsert stages a present row; cols name the values (every stored column of the table).
func (a *Applier) Upsert(ctx context.Context, table string, cols []string, vals [][]byte) error {
	return a.stageRecord(ctx, table, cols, vals, true)
}

// Delete stages a key whose row is absent at the batch's end.
func (a *Applier) Delete(ctx context.Context, table string, cols []string, vals [][]byte) error {
	return a.stageRecord(ctx, table, cols, vals, false)
}

func (a *Applier) stageRecord(ctx context.Context, table string, cols []string, vals [][]byte, present bool) error {
	if a.missing[table] { // the last changes of a removed partition the target does not have
		a.rows++
		return nil
	}
	t, err := a.table(ctx, table)
	if err != nil {
		return err
	}
	m, err := t.mapping(cols, present)
	if err != nil {
		return err
	}
	return a.stageKeyed(ctx, t, m, vals, present)
}

// SetRows stages a rows record: the source holds count copies of the row (a table without a key).
func (a *Applier) SetRows(ctx context.Context, table string, cols []string, vals [][]byte, count int64) error {
	t, err := a.table(ctx, table)
	if err != nil {
		return err
	}
	if count < 0 {
		return &DriftError{Table: t.name, Err: fmt.Errorf("rows record with count %d", count)}
	}
	m, err := t.mapping(cols, true)
	if err != nil {
		return err
	}
	return a.stageLine(ctx, t, true, true, m, vals, strconv.AppendInt(nil, count, 10))
}

// UpsertMap and DeleteMap take a decoded JSON object.
func (a *Applier) UpsertMap(ctx context.Context, table string, row map[string]*string) error {
	return a.stageMap(ctx, table, row, true)
}

// DeleteMap stages a key given as a decoded JSON object.
func (a *Applier) DeleteMap(ctx context.Context, table string, key map[string]*string) error {
	return a.stageMap(ctx, table, key, false)
}

func (a *Applier) stageMap(ctx context.Context, table string, obj map[string]*string, present bool) error {
	t, err := a.table(ctx, table)
	if err != nil {
		return err
	}
	cols := make([]string, 0, len(obj))
	vals := make([][]byte, 0, len(obj))
	for c, v := range obj {
		cols = append(cols, c)
		if v == nil {
			vals = append(vals, nil)
		} else {
			vals = append(vals, []byte(*v))
		}
	}
	m, err := t.buildMapping(cols, present)
	if err != nil {
		return err
	}
	return a.stageKeyed(ctx, t, m, vals, present)
}

// mapping maps the record's columns to the table's; it is cached for the common case of the
// same columns over and over (compared by content: callers may reuse their slice).
func (t *targetTable) mapping(cols []string, full bool) ([]int, error) {
	c := &t.keyCache
	if full {
		c = &t.rowCache
	}
	if c.m != nil && sameStrings(cols, c.cols) {
		return c.m, nil
	}
	m, err := t.buildMapping(cols, full)
	if err != nil {
		return nil, err
	}
	c.cols, c.m = append(c.cols[:0], cols...), m
	return m, nil
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// buildMapping returns, for each table column, the index of its value in cols (-1: not given).
func (t *targetTable) buildMapping(cols []string, full bool) ([]int, error) {
	m := make([]int, len(t.cols))
	for i := range m {
		m[i] = -1
	}
	for j, c := range cols {
		i, ok := t.colIdx[c]
		if !ok {
			return nil, &DriftError{Table: t.name, Err: fmt.Errorf("unknown column %q (schema drift?): add it on the target and re-run", c)}
		}
		if m[i] >= 0 {
			return nil, &DriftError{Table: t.name, Err: fmt.Errorf("column %q given twice", c)}
		}
		m[i] = j
	}
	if full {
		for i, c := range t.cols {
			if m[i] < 0 {
				return nil, &DriftError{Table: t.name, Err: fmt.Errorf("row lacks column %q that the target has (schema drift?)", c)}
			}
		}
	} else {
		if len(cols) != len(t.key) {
			return nil, &DriftError{Table: t.name, Err: fmt.Errorf("delete key has columns %v but the target's key is %v", cols, t.keyNames())}
		}
		for _, k := range t.key {
			if m[k] < 0 {
				return nil, &DriftError{Table: t.name, Err: fmt.Errorf("delete key has columns %v but the target's key is %v", cols, t.keyNames())}
			}
		}
	}
	return m, nil
}

func (t *targetTable) keyNames() []string {
	n := make([]string, len(t.key))
	for i, k := range t.key {
		n[i] = t.cols[k]
	}
	return n
}

// stageKeyed stages an upsert (present) or a delete of a table with a key.
func (a *Applier) stageKeyed(ctx context.Context, t *targetTable, m []int, vals [][]byte, present bool) error {
	if len(t.key) == 0 {
		return &DriftError{Table: t.name, Err: errors.New("has no primary key or usable unique index on the target; create its primary key before catch-up")}
	}
	for _, k := range t.key {
		if vals[m[k]] == nil {
			return &DriftError{Table: t.name, Err: fmt.Errorf("key column %q is null", t.cols[k])}
		}
	}
	tail := []byte("f")
	if present {
		tail = []byte("t")
	}
	return a.stageLine(ctx, t, false, present, m, vals, tail)
}

// stageLine adds one COPY line to the table's stage: the mapped values, then tail (unless the
// stage has no flag column).
func (a *Applier) stageLine(ctx context.Context, t *targetTable, rows, present bool, m []int, vals [][]byte, tail []byte) error {
	if a.tx == nil {
		return errors.New("row outside a batch (no begin record before it)")
	}
	s, err := a.stageFor(ctx, t, rows, present)
	if err != nil {
		return err
	}
	before := s.buf.Len()
	for _, i := range s.idx {
		if m[i] < 0 || vals[m[i]] == nil {
			s.buf.WriteString(`\N`)
		} else {
			appendCopyText(&s.buf, vals[m[i]])
		}
		s.buf.WriteByte('\t')
	}
	if s.flagless {
		s.buf.Truncate(s.buf.Len() - 1) // the last tab
	} else {
		s.buf.Write(tail)
	}
	s.buf.WriteByte('\n')
	a.rows++
	a.buffered += s.buf.Len() - before
	if s.buf.Len() >= stageFlush {
		if err := a.sendStage(ctx, s); err != nil {
			return err
		}
	}
	if a.buffered >= totalFlush {
		for _, o := range a.order {
			if err := a.sendStage(ctx, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendCopyText escapes v for COPY's text format.
func appendCopyText(b *bytes.Buffer, v []byte) {
	start := 0
	for i, c := range v {
		var esc byte
		switch c {
		case '\\':
			esc = '\\'
		case '\n':
			esc = 'n'
		case '\r':
			esc = 'r'
		case '\t':
			esc = 't'
		default:
			continue
		}
		b.Write(v[start:i])
		b.WriteByte('\\')
		b.WriteByte(esc)
		start = i + 1
	}
	b.Write(v[start:])
}

func (a *Applier) sendStage(ctx context.Context, s *stage) error {
	if s.buf.Len() == 0 {
		return nil
	}
	n := s.buf.Len()
	cols := s.columns()
	switch {
	case s.flagless:
	case s.rows:
		cols += ", pgferry_count__"
	default:
		cols += ", pgferry_present__"
	}
	_, err := a.tx.Conn().PgConn().CopyFrom(ctx, &s.buf, fmt.Sprintf("COPY pg_temp.%s (%s) FROM STDIN", s.temp, cols))
	if err != nil {
		return fmt.Errorf("stage rows of %s: %w", s.t.name, err)
	}
	s.buf.Reset()
	s.onServer = true
	a.buffered -= n
	return nil
}

// Truncate empties the table on the target, discarding what the batch staged for it before.
func (a *Applier) Truncate(ctx context.Context, table string) error {
	if a.tx == nil {
		return errors.New("truncate outside a batch (no begin record before it)")
	}
	t, err := a.table(ctx, table)
	if err != nil {
		return err
	}
	for _, k := range []string{stageKey(t.name, false), stageKey(t.name, false) + keysSuffix, stageKey(t.name, true)} {
		if s := a.stages[k]; s != nil && s.touched {
			a.buffered -= s.buf.Len()
			s.buf.Reset()
			if s.onServer {
				if _, err := a.tx.Exec(ctx, "TRUNCATE pg_temp."+s.temp); err != nil {
					return fmt.Errorf("truncate staging of %s: %w", t.name, err)
				}
			}
		}
	}
	if _, err := a.tx.Exec(ctx, "TRUNCATE "+t.sql); err != nil {
		return fmt.Errorf("truncate %s on target: %w", t.name, err)
	}
	return nil
}

// applyStaged runs DELETE of every staged key, then INSERT of the present rows, table by table.
func (a *Applier) applyStaged(ctx context.Context) error {
	for _, s := range a.order {
		if err := a.sendStage(ctx, s); err != nil {
			return err
		}
	}
	// Deletes staged apart (wide tables) go first: every key of a table is deleted before its
	// rows are inserted, so a unique constraint never sees an intermediate state.
	for _, s := range a.order {
		if s.onServer && s.keysOnly {
			if err := a.deleteStaged(ctx, s); err != nil {
				return err
			}
		}
	}
	for _, s := range a.order {
		if !s.onServer || s.keysOnly {
			continue
		}
		if s.rows {
			if err := a.applyRows(ctx, s); err != nil {
				return err
			}
			continue
		}
		t := s.t
		if err := a.deleteStaged(ctx, s); err != nil {
			return err
		}
		cols := s.columns()
		where := " WHERE pgferry_present__"
		if s.flagless {
			where = ""
		}
		// OVERRIDING SYSTEM VALUE (10+, so every supported target) keeps the source's identity values.
		ins := fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM pg_temp.%s%s", t.plain, cols, cols, s.temp, where)
		if _, err := a.tx.Exec(ctx, ins); err != nil {
			return fmt.Errorf("insert changed rows of %s: %w", t.name, err)
		}
	}
	return nil
}

// deleteStaged deletes the target's rows of every key staged in s.
func (a *Applier) deleteStaged(ctx context.Context, s *stage) error {
	t := s.t
	var on []string
	for _, k := range t.key {
		q := ident.Quote(t.cols[k])
		on = append(on, "t."+q+" = s."+q)
	}
	del := fmt.Sprintf("DELETE FROM %s t USING pg_temp.%s s WHERE %s", t.sql, s.temp, strings.Join(on, " AND "))
	if _, err := a.tx.Exec(ctx, del); err != nil {
		return fmt.Errorf("delete changed keys of %s: %w", t.name, err)
	}
	return nil
}

// clearStaged empties the staging tables after their rows were applied.
func (a *Applier) clearStaged(ctx context.Context) error {
	for _, s := range a.order {
		if !s.onServer {
			continue
		}
		if _, err := a.tx.Exec(ctx, "TRUNCATE pg_temp."+s.temp); err != nil {
			return fmt.Errorf("clear staging of %s: %w", s.t.name, err)
		}
		s.onServer = false
	}
	return nil
}

// FlushPoint commits the work staged so far without moving the position (an oversized batch).
// A part of a batch may clash with a unique constraint that the whole batch satisfies (a value
// moved from one key to another across the cut): then the part is kept staged and applied with
// the next one instead.
func (a *Applier) FlushPoint(ctx context.Context) error {
	if a.tx == nil {
		return errors.New("flush outside a batch")
	}
	for _, s := range a.order {
		if err := a.sendStage(ctx, s); err != nil {
			return err
		}
	}
	if _, err := a.tx.Exec(ctx, "SAVEPOINT pgferry_part"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if err := a.applyStaged(ctx); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "23P01") {
			if _, err := a.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT pgferry_part"); err != nil {
				return fmt.Errorf("roll back part of batch: %w", err)
			}
			return nil
		}
		return err
	}
	if err := a.clearStaged(ctx); err != nil {
		return err
	}
	if err := a.tx.Commit(ctx); err != nil {
		a.afterTx(false)
		return fmt.Errorf("commit part of batch: %w", err)
	}
	a.afterTx(true)
	return a.beginTx(ctx)
}

// Commit applies what is staged, moves the position to `to` and commits.
func (a *Applier) Commit(ctx context.Context, to string, rows int64) error {
	if a.tx == nil {
		return errors.New("commit outside a batch (no begin record before it)")
	}
	if to != a.to {
		return fmt.Errorf("commit to %s does not match begin's %s", to, a.to)
	}
	if rows >= 0 && rows != a.rows {
		return fmt.Errorf("batch ends with rows=%d but %d records came (truncated or edited stream)", rows, a.rows)
	}
	if err := a.applyStaged(ctx); err != nil {
		return err
	}
	took := time.Since(a.started)
	rate := 0.0
	if took > 0 {
		rate = float64(a.rows) / took.Seconds()
	}
	if err := state.WriteApply(ctx, a.tx, a.stateSchema, to, a.rows, a.at, rate); err != nil {
		return err
	}
	if err := a.tx.Commit(ctx); err != nil {
		a.afterTx(false)
		return fmt.Errorf("commit batch: %w", err)
	}
	a.afterTx(true)
	a.known = to
	a.LastTo = to
	a.Batches++
	a.Rows += a.rows
	if a.OnCommit != nil {
		a.OnCommit(to, a.rows, took)
	}
	return nil
}

// Abort rolls back an open batch.
func (a *Applier) Abort(ctx context.Context) { a.rollback(ctx) }

func (a *Applier) rollback(ctx context.Context) {
	if a.tx != nil {
		a.tx.Rollback(context.WithoutCancel(ctx))
	}
	a.afterTx(false)
}

// afterTx resets per-transaction staging state; staging tables created in a rolled-back
// transaction are gone and forgotten.
func (a *Applier) afterTx(committed bool) {
	a.tx = nil
	for name, s := range a.stages {
		if !committed && s.created {
			delete(a.stages, name)
		}
		s.created = false
		s.touched = false
		s.onServer = false
		s.buf.Reset()
	}
	a.order = a.order[:0]
	a.buffered = 0
}

// sinkFor adapts the Applier to the Sink interface with a fixed context.
type applySink struct {
	ctx context.Context
	a   *Applier
}

// AsSink returns the Applier as a Sink bound to ctx.
func (a *Applier) AsSink(ctx context.Context) Sink { return applySink{ctx, a} }

func (s applySink) Begin(from, to, at string) error { return s.a.Begin(s.ctx, from, to, at) }
func (s applySink) Upsert(t string, c []string, v [][]byte) error {
	return s.a.Upsert(s.ctx, t, c, v)
}
func (s applySink) Delete(t string, c []string, v [][]byte) error {
	return s.a.Delete(s.ctx, t, c, v)
}
func (s applySink) Rows(t string, c []string, v [][]byte, n int64) error {
	return s.a.SetRows(s.ctx, t, c, v, n)
}
func (s applySink) Truncate(t string) error { return s.a.Truncate(s.ctx, t) }
func (s applySink) RemovePartition(t, p string, dropped bool) error {
	return s.a.RemovePartition(s.ctx, t, p, dropped)
}
func (s applySink) FlushPoint() error                  { return s.a.FlushPoint(s.ctx) }
func (s applySink) Commit(to string, rows int64) error { return s.a.Commit(s.ctx, to, rows) }
