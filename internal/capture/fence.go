package capture

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/ident"
)

// The write fence (docs/capture.md, "## The write fence") is the sequence <schema>.fence, which
// every capture trigger function reads first: while it is called (is_called), the function raises
// FenceMessage, so the write fails whoever makes it. A sequence, not a table row, because
// sequences are not MVCC: setval() is seen at once by every statement of every session, whatever
// its snapshot (a REPEATABLE READ transaction opened before the fence sees it too), role or
// settings, and reading it is one function call, no query.
const (
	FenceSequence = "fence"
	// FenceSQLState is read_only_sql_transaction, what a write in a read-only transaction gets:
	// an application treats the fence like the read-only database of the polite first step.
	FenceSQLState = "25006"
	FenceMessage  = "write fence: the database is being moved"
	FenceHint     = "pgferry is moving this database to another server; writes are refused until the move is done " +
		"(then use the new server) or undone ('pgtrig fence down')"
)

// fenceSeq is the fence sequence's name as an SQL literal, for regclass arguments.
func fenceSeq(schema string) string {
	return ident.Literal(ident.Quote(schema) + "." + ident.Quote(FenceSequence))
}

// FenceCheckSQL is the plpgsql statement every capture trigger function starts with: it raises
// the fence's error while the fence is up. Trigger functions of any kind call it (through
// triggerFunctionSQL, or directly as capture_truncate does), and Install upgrades functions
// whose body lacks it.
func FenceCheckSQL(schema string) string {
	return fmt.Sprintf("  IF pg_catalog.pg_sequence_last_value(%s::pg_catalog.regclass) IS NOT NULL THEN\n"+
		"    RAISE EXCEPTION USING ERRCODE = %s, MESSAGE = %s, HINT = %s;\n  END IF;\n",
		fenceSeq(schema), ident.Literal(FenceSQLState), ident.Literal(FenceMessage), ident.Literal(FenceHint))
}

// FenceDownSQL is the one statement that lowers the fence (idempotent).
func FenceDownSQL(schema string) string {
	return fmt.Sprintf("SELECT pg_catalog.setval(%s, 1, false)", fenceSeq(orDefault(schema)))
}

func orDefault(schema string) string {
	if schema == "" {
		return DefaultSchema
	}
	return schema
}

// FenceState is the write fence of a capture schema and whether it can hold.
type FenceState struct {
	Schema string     `json:"schema"`
	Up     bool       `json:"up"`
	Since  *time.Time `json:"since"` // when it went up, null when down
	// Unfenced names the capture trigger functions in use that do not check the fence.
	Unfenced []string `json:"unfenced_functions"`
	Problem  string   `json:"problem,omitempty"` // why the fence would not hold; empty when it would
	sinceMS  int64
}

// FenceNotReadyError is a fence that would not hold, found by Op (e.g. "raise write fence").
type FenceNotReadyError struct {
	Op    string
	State *FenceState
}

func (e *FenceNotReadyError) Error() string {
	return fmt.Sprintf("%s in %s: %s", e.Op, e.State.Schema, e.State.Problem)
}

// GetFenceState reads the fence of schema and checks that every capture trigger function in use
// checks it.
func GetFenceState(ctx context.Context, conn *pgx.Conn, schema string) (*FenceState, error) {
	st := &FenceState{Schema: orDefault(schema)}
	var hasSchema, hasSeq bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL",
		ident.Quote(st.Schema)+".capture_tables", ident.Quote(st.Schema)+"."+ident.Quote(FenceSequence)).Scan(&hasSchema, &hasSeq); err != nil {
		return nil, fmt.Errorf("read write fence: %w", err)
	}
	switch {
	case !hasSchema:
		st.Problem = "no capture schema " + st.Schema + " on the source"
		return st, nil
	case !hasSeq:
		st.Problem = "the capture was installed by a pgtrig that predates the write fence"
		return st, nil
	}
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT is_called, last_value FROM %s.%s", ident.Quote(st.Schema), ident.Quote(FenceSequence))).
		Scan(&st.Up, &st.sinceMS); err != nil {
		return nil, fmt.Errorf("read write fence: %w", err)
	}
	if st.Up {
		t := time.UnixMilli(st.sinceMS).UTC()
		st.Since = &t
	}
	var err error
	if st.Unfenced, err = unfencedFunctions(ctx, conn, st.Schema); err != nil {
		return nil, err
	}
	if len(st.Unfenced) > 0 {
		st.Problem = fmt.Sprintf("%d capture trigger function(s) do not check the fence yet: %s", len(st.Unfenced), strings.Join(st.Unfenced, ", "))
	}
	return st, nil
}

// unfencedFunctions lists the functions of the capture schema that a trigger calls and whose
// body does not hold the current fence check.
func unfencedFunctions(ctx context.Context, conn *pgx.Conn, schema string) ([]string, error) {
	rows, err := conn.Query(ctx, `SELECT DISTINCT p.proname::text FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND strpos(p.prosrc, $2) = 0 ORDER BY 1`, schema, FenceCheckSQL(schema))
	if err != nil {
		return nil, fmt.Errorf("check capture functions for the fence: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("check capture functions for the fence: %w", err)
	}
	return names, nil
}

// Fence is a raised write fence.
type Fence struct {
	Schema string `json:"schema"`
	// Position is txid_current_snapshot() taken after the fence took effect and after a txid
	// assigned later than that committed: FenceWait's proof starts from it.
	Position string    `json:"position"`
	Since    time.Time `json:"since"`
	WasUp    bool      `json:"was_up"` // it was already up (Since is kept)
}

// readWrite runs fn in a READ WRITE transaction: the fence is set on a database whose new
// sessions default to read-only.
func readWrite(ctx context.Context, conn *pgx.Conn, sql string, dest ...any) error {
	return pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadWrite}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, sql).Scan(dest...)
	})
}

// FenceUp raises the write fence of schema and returns its position. It refuses (with a
// *FenceNotReadyError) when a capture trigger function would not check it.
func FenceUp(ctx context.Context, conn *pgx.Conn, schema string) (*Fence, error) {
	st, err := GetFenceState(ctx, conn, schema)
	if err != nil {
		return nil, err
	}
	if st.Problem != "" {
		return nil, &FenceNotReadyError{Op: "raise write fence", State: st}
	}
	f := &Fence{Schema: st.Schema, WasUp: st.Up}
	seq := fenceSeq(st.Schema)
	// setval is not transactional: every capture trigger raises from the moment it returns. The
	// value is the time the fence went up (kept when it already was), in milliseconds.
	var ms int64
	if err := readWrite(ctx, conn, fmt.Sprintf(`SELECT pg_catalog.setval(%[1]s,
  coalesce(pg_catalog.pg_sequence_last_value(%[1]s), (extract(epoch FROM clock_timestamp()) * 1000)::bigint), true)`, seq), &ms); err != nil {
		return nil, fmt.Errorf("raise write fence: %w", err)
	}
	// Every transaction that got past a fence check had its txid before the check, so before
	// setval; the txid assigned here comes after all of them, and once it has committed, the xmax
	// of any later snapshot is above it: the position's xmax exceeds every such txid.
	var x int64
	if err := readWrite(ctx, conn, "SELECT txid_current()", &x); err != nil {
		return nil, fmt.Errorf("raise write fence: %w", err)
	}
	if err := conn.QueryRow(ctx, "SELECT txid_current_snapshot()::text").Scan(&f.Position); err != nil {
		return nil, fmt.Errorf("read fence position: %w", err)
	}
	f.Since = time.UnixMilli(ms).UTC()
	return f, nil
}

// FenceDown lowers the write fence with FenceDownSQL and reports whether it was up. A fence that
// is down, or a capture schema without one, is left as it is.
func FenceDown(ctx context.Context, conn *pgx.Conn, schema string) (bool, error) {
	schema = orDefault(schema)
	var has bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ident.Quote(schema)+"."+ident.Quote(FenceSequence)).Scan(&has); err != nil {
		return false, fmt.Errorf("lower write fence: %w", err)
	}
	if !has {
		return false, nil
	}
	var was bool
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT is_called FROM %s.%s", ident.Quote(schema), ident.Quote(FenceSequence))).Scan(&was); err != nil {
		return false, fmt.Errorf("lower write fence: %w", err)
	}
	var v int64
	if err := readWrite(ctx, conn, FenceDownSQL(schema), &v); err != nil {
		return false, fmt.Errorf("lower write fence: %w", err)
	}
	return was, nil
}

// upgradeFence replaces the trigger functions of a captured table that do not check the write
// fence (an install made before the fence) with the current ones: CREATE OR REPLACE FUNCTION,
// which locks no table and keeps the triggers and the delta rows. It reports whether it did.
func upgradeFence(ctx context.Context, conn *pgx.Conn, opt InstallOptions, s tableSpec, unfenced []string) (bool, error) {
	own := FuncName(s.Relid)
	stale := false
	for _, n := range unfenced {
		stale = stale || n == own || strings.HasPrefix(n, own+"_")
	}
	if !stale {
		return false, nil
	}
	sql := lockTimeoutSQL(opt.LockTimeout) + functionSQL(opt.Schema, s)
	if err := runTable(ctx, conn, opt.DryRun, opt.Progress, s.Table.Key(), sql, opt.LockTimeout, opt.Retries, opt.RetryBase); err != nil {
		return false, fmt.Errorf("upgrade capture functions of %s: %w", s.Table.Key(), err)
	}
	return true, nil
}

// IsFenceError reports whether err is the write fence's refusal of a write.
func IsFenceError(err error) bool {
	var pe interface{ SQLState() string }
	return errors.As(err, &pe) && pe.SQLState() == FenceSQLState && strings.Contains(err.Error(), FenceMessage)
}
