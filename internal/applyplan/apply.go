// Package applyplan runs a schema script on the target with several connections: statements on
// different tables in parallel, in script order per table, the rest alone (pgschema apply,
// pgcopyin --indexes).
package applyplan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/ident"
	"github.com/pgferry/pgferry/internal/retry"
	"github.com/pgferry/pgferry/internal/sqllex"
	"github.com/pgferry/pgferry/internal/sqlstmt"
)

// Step is one statement of an apply plan.
type Step struct {
	SQL     string
	Line    int
	Kind    sqlstmt.Kind
	Tables  []string // keys of the tables it touches; empty for a barrier
	Barrier bool     // runs alone, after everything before it

	uniqueIndex string   // MarkUnique: the unique index it creates ("schema.name"), held back on a mixed table
	onIndexes   []string // MarkUnique: the indexes it works on, held back with them
}

// Plan is a script cut into steps.
type Plan struct {
	Steps []Step
	// Serial is set when the script controls transactions itself (BEGIN ... COMMIT):
	// it then runs statement by statement on one connection.
	Serial bool
	// Log, when set, gets a line for every statement that took longer than SlowAfter.
	Log       io.Writer
	SlowAfter time.Duration
	// SkipExisting makes "already exists" errors count as done.
	SkipExisting bool
	// Settings are statements (SET ...) run on every connection when it is opened, before the
	// script's own settings are replayed, including after a reconnect.
	Settings []string
	// Tool is the program running the plan, named in log lines and application_name.
	Tool string
	// Held are the steps RunGated held back (MarkUnique), in the order it met them.
	Held []Step
}

func (p *Plan) appName() string { return "pgferry-" + p.Tool }

// alreadyExists reports whether err says the object a statement creates is already there.
func alreadyExists(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "42P07", "42710", "42P06", "42723", "42P04": // relation, object, schema, function, database
		return true
	case "42809": // ATTACH PARTITION: "is already a partition"
		return strings.Contains(pe.Message, "is already a partition")
	case "42P16": // ADD PRIMARY KEY: "multiple primary keys for table ... are not allowed"
		return strings.Contains(pe.Message, "multiple primary keys")
	}
	return false
}

// New splits a script run by tool into steps and works out which may run in parallel.
func New(tool string, src []byte) (*Plan, error) {
	if err := sqlstmt.CheckText(src); err != nil {
		return nil, err
	}
	pieces, err := sqllex.Split(string(src))
	if err != nil {
		return nil, cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("read script: %w", err), "the script is not complete SQL; nothing was applied")
	}
	p := &Plan{Tool: tool}
	indexTable := map[string]string{} // index name (schema.name and name) -> table key
	for _, pc := range pieces {
		if run, err := applicable(pc); err != nil {
			return nil, err
		} else if !run {
			continue
		}
		st := sqlstmt.Parse(pc.Text)
		step := Step{SQL: pc.Text, Line: pc.Line, Kind: st.Kind, Tables: stepTables(st, indexTable)}
		step.Barrier = len(step.Tables) == 0
		p.Serial = p.Serial || st.Kind == sqlstmt.KTxn
		p.Steps = append(p.Steps, step)
	}
	if p.Serial {
		for i := range p.Steps {
			p.Steps[i].Tables, p.Steps[i].Barrier = nil, true
		}
	}
	if len(p.Steps) == 0 {
		return nil, cliutil.WithHint(cliutil.ExitFailure, errors.New("read script: no SQL statements in the input"),
			"pipe the output of 'pgschema dump' or 'pgschema filter' into apply")
	}
	return p, nil
}

// applicable reports whether a piece of the script is a statement to run; whitespace and the
// \restrict meta-commands are skipped, other meta-commands, COPY data and a statement cut off
// before its ';' are refused.
func applicable(pc sqllex.Piece) (bool, error) {
	switch pc.Kind {
	case sqllex.Space:
		return false, nil
	case sqllex.Meta:
		cmd := strings.Fields(strings.TrimPrefix(pc.Text, `\`))
		if len(cmd) > 0 && (cmd[0] == "restrict" || cmd[0] == "unrestrict") {
			return false, nil
		}
		return false, cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("read script: line %d: psql meta-command %q cannot be applied", pc.Line, strings.TrimSpace(pc.Text)),
			"apply runs SQL on one database; remove the meta-command or run the script with psql; nothing was applied")
	case sqllex.CopyData:
		return false, cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("read script: line %d: COPY data cannot be applied", pc.Line),
			"apply is for schema scripts; load data with pgcopyin or psql; nothing was applied")
	}
	if pc.Unterminated {
		return false, cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("read script: line %d: the last statement has no terminating ';'", pc.Line),
			"the script looks truncated; nothing was applied")
	}
	return true, nil
}

// tableKey is a table's key, or its bare name when the statement does not name its schema.
func tableKey(t ident.Table) string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Key()
}

// stepTables returns the keys of the tables a statement works on (nil: it must run alone) and
// records the tables of the indexes it creates in indexTable, for later attaches and comments.
func stepTables(st sqlstmt.Stmt, indexTable map[string]string) []string {
	var tables []string
	switch st.Kind {
	case sqlstmt.KIndex, sqlstmt.KIndexConstraint: // a constraint's index has its name
		tables = []string{tableKey(st.Table)}
		if st.Name != "" {
			indexTable[st.Name] = tableKey(st.Table)
			indexTable[st.Table.Schema+"."+st.Name] = tableKey(st.Table)
		}
	case sqlstmt.KForeignKey:
		tables = []string{tableKey(st.Table), tableKey(st.RefTable)}
	case sqlstmt.KCheck, sqlstmt.KValidate, sqlstmt.KAlterTable, sqlstmt.KTrigger, sqlstmt.KRowSecurity, sqlstmt.KPolicy:
		if st.Table.Name != "" {
			tables = []string{tableKey(st.Table)}
		}
		if st.Parent.Name != "" {
			tables = append(tables, tableKey(st.Parent))
		}
	case sqlstmt.KIndexAttach:
		a, b := indexTable[st.Table.Schema+"."+st.Name], indexTable[tableKey(st.AttachName)]
		if a != "" && b != "" {
			tables = []string{a, b}
		}
	case sqlstmt.KAlterIndex:
		if t := indexTable[st.Table.Schema+"."+st.Name]; t != "" {
			tables = []string{t}
		}
	case sqlstmt.KComment:
		if t := indexTable[st.Table.Schema+"."+st.Name]; st.CommentOn == "index" && t != "" {
			tables = []string{t}
		}
	}
	for _, t := range tables {
		if t == "" {
			return nil
		}
	}
	return tables
}

// Print writes the plan for --dry-run.
func (p *Plan) Print(w io.Writer) error {
	for _, s := range p.Steps {
		mode := "parallel on " + strings.Join(s.Tables, ", ")
		if s.Kind == sqlstmt.KSet {
			mode = "setting, on every connection"
		} else if s.Barrier {
			mode = "alone"
		}
		first := strings.Join(strings.Fields(s.SQL), " ")
		if len(first) > 100 {
			first = first[:100] + "..."
		}
		if _, err := fmt.Fprintf(w, "line %d\t%s\t%s\t%s\n", s.Line, s.Kind, mode, first); err != nil {
			return err
		}
	}
	return nil
}

// StepError is a statement that failed, with where it is in the script.
type StepError struct {
	Line int
	SQL  string
	Err  error
}

func (e *StepError) Error() string {
	sql := strings.TrimSpace(e.SQL)
	if len(sql) > 400 {
		sql = sql[:400] + "..."
	}
	msg := e.Err.Error()
	var pe *pgconn.PgError
	if errors.As(e.Err, &pe) {
		msg = fmt.Sprintf("%s: %s (SQLSTATE %s)", pe.Severity, pe.Message, pe.Code)
		if pe.Detail != "" {
			msg += "; detail: " + pe.Detail
		}
	}
	return fmt.Sprintf("apply statement at line %d: %s\n  statement: %s", e.Line, msg, sql)
}

func (e *StepError) Unwrap() error { return e.Err }

// worker is one target connection with the settings replayed on it.
type worker struct {
	url     string
	app     string // application_name
	conn    *pgx.Conn
	init    []string // apply's own settings, run first on every (re)connect
	sets    []string // the script's settings so far
	noRetry bool     // inside a script's own transaction a lost statement cannot be redone alone

	skipExisting bool
	skipped      []string // statements skipped as already done
}

func (w *worker) ensure(ctx context.Context) error {
	if w.conn != nil && !w.conn.IsClosed() {
		return nil
	}
	conn, err := dbconn.Connect(ctx, w.url, dbconn.Target, dbconn.Options{AppName: w.app})
	if err != nil {
		return err
	}
	for _, s := range w.init {
		if _, err := conn.Exec(ctx, s, pgx.QueryExecModeSimpleProtocol); err != nil {
			conn.Close(context.Background())
			return fmt.Errorf("apply setting %q: %w", s, err)
		}
	}
	for _, s := range w.sets {
		if _, err := conn.Exec(ctx, s, pgx.QueryExecModeSimpleProtocol); err != nil {
			conn.Close(context.Background())
			return fmt.Errorf("replay setting %q: %w", s, err)
		}
	}
	w.conn = conn
	return nil
}

func (w *worker) close() {
	if w.conn != nil {
		w.conn.Close(context.Background())
	}
}

// exec runs one step, reconnecting and redoing it after a lost connection. A statement redone
// after a lost connection that finds its object already there counts as done.
func (w *worker) exec(ctx context.Context, s Step) error {
	attempt := 0
	policy := retry.Default
	if w.noRetry {
		policy.Attempts = 1
	}
	err := policy.Do(ctx, func(ctx context.Context) error {
		attempt++
		if err := w.ensure(ctx); err != nil {
			return err
		}
		_, err := w.conn.Exec(ctx, s.SQL, pgx.QueryExecModeSimpleProtocol)
		if err != nil && retry.Transient(err) {
			w.conn.Close(context.Background())
			w.conn = nil
		}
		var pe *pgconn.PgError
		if attempt > 1 && errors.As(err, &pe) && (pe.Code == "42P07" || pe.Code == "42710") {
			return nil
		}
		if w.skipExisting && alreadyExists(err) {
			w.skipped = append(w.skipped, fmt.Sprintf("line %d: %s", s.Line, err))
			return nil
		}
		return err
	})
	if err != nil {
		return &StepError{Line: s.Line, SQL: s.SQL, Err: err}
	}
	return nil
}

// Run applies the plan with jobs connections.
func (p *Plan) Run(ctx context.Context, url string, jobs int) error {
	return p.RunGated(ctx, url, jobs, nil)
}

// stepState is where a step is in RunGated's schedule.
type stepState byte

const (
	stepWaiting stepState = iota // not started
	stepRunning
	stepDone // finished, with or without an error
)

// RunGated applies the plan with jobs connections, running a statement only once gate has
// opened its tables (a nil gate holds nothing back). A statement starts as soon as its tables
// are open and free, after every earlier statement on the same tables has finished and after
// every earlier barrier: the order on each table is the script's, statements on other tables
// may overtake a waiting one.
func (p *Plan) RunGated(ctx context.Context, url string, jobs int, gate *Gate) error {
	workers, err := p.openWorkers(ctx, url, jobs)
	if err != nil {
		return err
	}
	defer func() {
		for _, w := range workers {
			w.close()
		}
	}()
	sc := &scheduler{p: p, ctx: ctx, gate: gate, workers: workers, heldIndexes: map[string]bool{},
		free: append([]*worker(nil), workers...), state: make([]stepState, len(p.Steps))}
	sc.cond = sync.NewCond(&sc.mu)
	// wake the scheduler when the context is cancelled or the gate opens a table
	wake := func() { sc.mu.Lock(); sc.cond.Broadcast(); sc.mu.Unlock() }
	stop := context.AfterFunc(ctx, wake)
	defer stop()
	gate.onChange(wake)
	defer gate.onChange(nil)
	sc.run()
	if p.Log != nil {
		n := 0
		for _, w := range workers {
			n += len(w.skipped)
		}
		if n > 0 {
			fmt.Fprintf(p.Log, "%s: skipped %d statements whose objects already exist (run 'pgschema diff' to check them)\n", p.Tool, n)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if sc.firstErr != nil {
		return cliutil.WithHint(cliutil.ExitFailure, sc.firstErr,
			"statements before it were applied; fix the cause, then apply the rest of the script (or start again on an empty target)")
	}
	return nil
}

// openWorkers opens the jobs connections in parallel; on an error it closes those it opened.
func (p *Plan) openWorkers(ctx context.Context, url string, jobs int) ([]*worker, error) {
	workers := make([]*worker, jobs)
	errs := make([]error, jobs)
	var wg sync.WaitGroup
	for i := range workers {
		workers[i] = &worker{url: url, app: p.appName(), init: p.Settings, noRetry: p.Serial, skipExisting: p.SkipExisting}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = workers[i].ensure(ctx)
		}(i)
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			for _, w := range workers {
				w.close()
			}
			return nil, e
		}
	}
	return workers, nil
}

// scheduler is RunGated's state; mu guards everything below it.
type scheduler struct {
	p       *Plan
	ctx     context.Context
	gate    *Gate
	workers []*worker

	mu       sync.Mutex
	cond     *sync.Cond
	free     []*worker
	running  int
	firstErr *StepError
	state    []stepState
	first    int // every step before it is done

	heldIndexes map[string]bool // indexes held back (MarkUnique)
}

// run starts steps until all are done, one fails or the context ends, then waits for the
// steps still running.
func (sc *scheduler) run() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for sc.firstErr == nil && sc.ctx.Err() == nil {
		for sc.first < len(sc.p.Steps) && sc.state[sc.first] == stepDone {
			sc.first++
		}
		if sc.first == len(sc.p.Steps) {
			break
		}
		if !sc.startReady() {
			sc.cond.Wait()
		}
	}
	// let statements already running finish (or fail) before reporting
	for sc.running > 0 {
		sc.cond.Wait()
	}
}

// startReady starts every step that may run now, in script order, and reports whether it
// started (or ran) any. A barrier runs alone once everything before it is done; nothing after
// a waiting barrier starts.
func (sc *scheduler) startReady() bool {
	started := false
	held := map[string]bool{} // tables of earlier steps that have not finished
	for i := sc.first; i < len(sc.p.Steps) && len(sc.free) > 0; i++ {
		s := sc.p.Steps[i]
		switch sc.state[i] {
		case stepDone:
			continue
		case stepRunning:
			for _, t := range s.Tables {
				held[t] = true
			}
			continue
		}
		if s.Barrier {
			if i != sc.first || !sc.gate.ready(s) {
				return started // nothing after a barrier may start before it
			}
			sc.runBarrier(i, s)
			return true
		}
		ok := sc.gate.ready(s)
		for _, t := range s.Tables {
			ok = ok && !held[t]
		}
		for _, t := range s.Tables { // after the check: a step may name a table twice
			held[t] = true
		}
		if ok && sc.holdBack(s) {
			sc.state[i], started = stepDone, true
		} else if ok {
			sc.start(i, s)
			started = true
		}
	}
	return started
}

// runBarrier runs step i alone (a setting on every connection), with mu released meanwhile.
func (sc *scheduler) runBarrier(i int, s Step) {
	sc.state[i] = stepRunning
	sc.mu.Unlock()
	var err error
	if s.Kind == sqlstmt.KSet {
		for _, w := range sc.workers {
			w.sets = append(w.sets, s.SQL)
			if err = w.exec(sc.ctx, s); err != nil {
				break
			}
		}
	} else {
		err = sc.workers[0].exec(sc.ctx, s)
	}
	sc.mu.Lock()
	sc.state[i] = stepDone
	if err != nil {
		sc.fail(err)
	}
}

// start runs step i on a free connection in the background.
func (sc *scheduler) start(i int, s Step) {
	w := sc.free[len(sc.free)-1]
	sc.free = sc.free[:len(sc.free)-1]
	sc.state[i] = stepRunning
	sc.running++
	p := sc.p
	go func() {
		t0 := time.Now()
		err := w.exec(sc.ctx, s)
		sc.mu.Lock()
		defer sc.mu.Unlock()
		if d := time.Since(t0); err == nil && p.Log != nil && d > p.SlowAfter {
			fmt.Fprintf(p.Log, "%s: line %d: %s on %s done in %s\n", p.Tool, s.Line, s.Kind, strings.Join(s.Tables, ", "), d.Round(100*time.Millisecond))
		}
		sc.state[i] = stepDone
		sc.running--
		sc.free = append(sc.free, w)
		if err != nil {
			sc.fail(err)
		}
		sc.cond.Broadcast()
	}()
}

// fail records err, keeping the failure earliest in the script.
func (sc *scheduler) fail(err error) {
	var se *StepError
	if !errors.As(err, &se) {
		se = &StepError{Err: err}
	}
	if sc.firstErr == nil || se.Line < sc.firstErr.Line {
		sc.firstErr = se
	}
}
