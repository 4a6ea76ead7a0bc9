package copyin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/progress"
	"github.com/pgferry/pgferry/internal/retry"
	"github.com/pgferry/pgferry/internal/state"
	"github.com/pgferry/pgferry/internal/stream"
	"github.com/pgferry/pgferry/internal/workpool"
)

// loader loads chunks with a pool of target connections.
type loader struct {
	cfg     Config
	h       *stream.Header
	targets []*target
	done    map[string]map[int]bool // chunks loaded before this run
	stderr  io.Writer
	prog    *progress.Reporter
	jobs    int
	idx     *indexBuild // nil without --indexes

	mu        sync.Mutex
	conns     []*pgx.Conn                // idle connections
	remaining []int                      // chunks left to load per table index
	snapshots map[string]map[string]bool // per table, the snapshots its loaded chunks were read under
}

// newLoader plans the load; snaps are the snapshots of each table's chunks loaded before (state.ChunkSnapshots).
func newLoader(cfg Config, h *stream.Header, targets []*target, done map[string]map[int]bool, snaps map[string][]string, idx *indexBuild, stderr io.Writer) *loader {
	l := &loader{cfg: cfg, h: h, targets: targets, done: done, idx: idx, stderr: stderr, prog: newProgress(cfg, h, stderr),
		snapshots: map[string]map[string]bool{}}
	for t, list := range snaps {
		l.snapshots[t] = map[string]bool{}
		for _, s := range list {
			l.snapshots[t][s] = true
		}
	}
	l.jobs = cfg.Jobs
	if l.jobs == 0 {
		l.jobs = h.Jobs
	}
	l.remaining = make([]int, len(h.Tables))
	for i, t := range h.Tables {
		for _, c := range t.Chunks {
			if !done[t.Name][c.ID] {
				l.remaining[i]++
			}
		}
		if l.remaining[i] == 0 {
			l.prog.TableDone(t.Name)
			idx.loaded(t.Name, len(l.snapshots[t.Name]) > 1)
		}
	}
	return l
}

// conn returns an idle target connection or opens one.
func (l *loader) conn(ctx context.Context) (*pgx.Conn, error) {
	l.mu.Lock()
	if n := len(l.conns); n > 0 {
		c := l.conns[n-1]
		l.conns = l.conns[:n-1]
		l.mu.Unlock()
		return c, nil
	}
	l.mu.Unlock()
	// synchronous_commit=off is safe here: a chunk's rows and its copy_chunks row commit together,
	// so a target crash loses both or neither and the re-run reloads the chunk.
	return dbconn.Connect(ctx, l.cfg.Target, dbconn.Target, dbconn.Options{AppName: appName,
		Extra: map[string]string{"synchronous_commit": "off"}, NetTimeout: l.cfg.NetTimeout})
}

// release returns a healthy idle connection to the pool and closes any other.
func (l *loader) release(c *pgx.Conn) {
	if c == nil {
		return
	}
	if c.IsClosed() || c.PgConn().TxStatus() != 'I' {
		c.Close(context.Background())
		return
	}
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.mu.Unlock()
}

func (l *loader) closeConns() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close(context.Background())
	}
	l.conns = nil
}

// chunkDone updates progress once a chunk read under snapshot committed: the rows and bytes
// counted as loading (fedRows, fedBytes) become committed rows.
func (l *loader) chunkDone(ti int, snapshot string, rows, fedRows, fedBytes int64) {
	name := l.h.Tables[ti].Name
	l.prog.Settle(name, fedRows, fedBytes, rows, fedBytes)
	l.prog.End(name)
	l.mu.Lock()
	l.remaining[ti]--
	last := l.remaining[ti] == 0
	if l.snapshots[name] == nil {
		l.snapshots[name] = map[string]bool{}
	}
	l.snapshots[name][snapshot] = true
	mixed := len(l.snapshots[name]) > 1
	l.mu.Unlock()
	if last {
		l.prog.TableDone(name)
		l.idx.loaded(name, mixed)
	}
}

// frameSource feeds one chunk's data frames to COPY; it ends (io.EOF) at the chunk-end frame.
// pgconn reads it from its own goroutine, which it may leave running after a connection error,
// so every field is guarded and close makes any later Read fail.
type frameSource struct {
	ctx    context.Context
	next   func() (*stream.Frame, error)
	onData func(data []byte) // called with each data frame as it is fed to COPY

	mu      sync.Mutex
	closed  bool
	cur     *stream.Frame
	rest    []byte
	summary *stream.ChunkSummary
	err     error // the source's own failure (COPY only reports that it was aborted)
	bytes   int64
}

var errSourceClosed = errors.New("chunk load ended")

func (s *frameSource) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.rest) == 0 {
		if s.closed {
			return 0, errSourceClosed
		}
		if s.cur != nil {
			s.cur.Release()
			s.cur = nil
		}
		if s.summary != nil {
			return 0, io.EOF
		}
		if err := s.ctx.Err(); err != nil {
			return 0, err
		}
		s.mu.Unlock()
		f, err := s.next()
		s.mu.Lock()
		if s.closed {
			if f != nil {
				f.Release()
			}
			return 0, errSourceClosed
		}
		if err != nil {
			s.err = err
			return 0, err
		}
		if f.Kind == stream.KindChunkEnd {
			s.summary = f.Summary
			return 0, io.EOF
		}
		if err := f.Decode(); err != nil { // decompress and verify here, in parallel with other chunks
			f.Release()
			s.err = streamError(err)
			return 0, err
		}
		s.cur, s.rest = f, f.Data
		s.bytes += int64(len(f.Data))
		if s.onData != nil {
			s.onData(f.Data)
		}
	}
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

// result returns the chunk-end summary (nil if not reached), the bytes fed and the source's error.
func (s *frameSource) result() (*stream.ChunkSummary, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.summary, s.bytes, s.err
}

func (s *frameSource) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.cur != nil {
		s.cur.Release()
		s.cur, s.rest = nil, nil
	}
}

// errChunk is a failure of one chunk, naming it.
type errChunk struct {
	table string
	chunk int
	err   error
}

func (e *errChunk) Error() string {
	return fmt.Sprintf("table %s chunk %d: %v", e.table, e.chunk, e.err)
}
func (e *errChunk) Unwrap() error { return e.err }

// loadChunk runs one chunk's transaction: COPY its frames, check the row count, record it, commit.
// It rolls back on any error (including a stream that ends or fails before the chunk-end frame).
func (l *loader) loadChunk(ctx context.Context, ti, id int, next func() (*stream.Frame, error)) (err error) {
	t := l.targets[ti]
	name := t.name
	l.prog.Begin(name)
	rc := progress.NewRowCounter(t.binary) // rows in flight, shown before the chunk commits
	src := &frameSource{ctx: ctx, next: next, onData: func(b []byte) { l.prog.Loading(name, rc.Count(b), int64(len(b))) }}
	defer func() {
		src.close()
		if err != nil {
			_, fed, _ := src.result()
			l.prog.Loading(name, -rc.Total(), -fed)
			l.prog.End(name)
		}
	}()
	conn, err := l.conn(ctx)
	if err != nil {
		return &errChunk{name, id, err}
	}
	defer func() { l.release(conn) }()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return &errChunk{name, id, fmt.Errorf("begin: %w", err)}
	}
	defer func() {
		if err != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			tx.Rollback(rctx)
			cancel()
		}
	}()
	tag, err := conn.PgConn().CopyFrom(ctx, src, t.copySQL)
	summary, _, srcErr := src.result()
	if srcErr != nil {
		return srcErr // names the table and chunk itself, or is the run's cause
	}
	if err != nil {
		var pe *pgconn.PgError
		if t.binary && errors.As(err, &pe) && (pe.Code == "22P03" || pe.Code == "42804" || pe.Code == "08P01") {
			return cliutil.WithHint(cliutil.ExitFailure, &errChunk{name, id, fmt.Errorf("copy (binary format): %w", err)},
				"the target's column types differ from the source's, which binary COPY cannot convert: re-run the pipeline with pgcopyout --format text (loaded chunks are kept and skipped)")
		}
		return &errChunk{name, id, fmt.Errorf("copy: %w", err)}
	}
	if summary == nil {
		return &errChunk{name, id, errors.New("copy ended before the chunk-end frame")}
	}
	if got, want := tag.RowsAffected(), summary.Rows; got != want {
		return &errChunk{name, id, fmt.Errorf("COPY loaded %d rows but the stream says the chunk holds %d; rolled back", got, want)}
	}
	if err := state.ChunkDone(ctx, tx, l.cfg.StateSchema, name, id, summary.Snapshot, summary.Rows, summary.Bytes); err != nil {
		return &errChunk{name, id, err}
	}
	if testHookBeforeCommit != nil {
		testHookBeforeCommit(conn.PgConn().PID(), name, id)
	}
	if err := tx.Commit(ctx); err != nil {
		return &errChunk{name, id, fmt.Errorf("commit: %w", err)}
	}
	_, fed, _ := src.result()
	src.close() // no more onData: rc is settled
	l.chunkDone(ti, summary.Snapshot, summary.Rows, rc.Total(), fed)
	return nil
}

type chunkKey struct{ table, chunk int }

// testHookBeforeCommit lets tests break a chunk's connection just before it commits.
var testHookBeforeCommit func(pid uint32, table string, chunk int)

// runStream dispatches the frames of the stream to one goroutine per open chunk. It can hold
// max(-j, header jobs) chunks at once, the most the stream may have open, so it never deadlocks.
func (l *loader) runStream(parent context.Context, r *stream.Reader, input io.Reader) error {
	n := max(l.jobs, l.h.Jobs)
	if l.cfg.Jobs > 0 && l.cfg.Jobs < l.h.Jobs {
		fmt.Fprintf(l.stderr, "pgcopyin: the stream has up to %d chunks in flight; loading with %d connections instead of -j %d\n", l.h.Jobs, n, l.cfg.Jobs)
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	// On a failure or a signal, stop waiting for input that may never come.
	stopRead := context.AfterFunc(ctx, func() {
		if c, ok := input.(io.Closer); ok {
			c.Close()
		}
	})
	defer stopRead()
	d := &streamDispatch{l: l, ctx: ctx, cancel: cancel, sem: make(chan struct{}, n)}
	r.DeferDecode() // each chunk's goroutine decompresses and verifies its own frames
	// The reader runs on its own: a read blocked on a stalled pipe must not delay an interrupt.
	readDone := make(chan struct{})
	go d.read(r, readDone)
	select {
	case <-readDone:
	case <-ctx.Done():
	}
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	d.wg.Wait()
	if err := parent.Err(); err != nil {
		return err // interrupted: in-flight chunks were rolled back
	}
	return context.Cause(ctx) // the first failure, or nil
}

// streamDispatch is the state runStream shares with its reader and chunk goroutines.
type streamDispatch struct {
	l      *loader
	ctx    context.Context
	cancel context.CancelCauseFunc
	sem    chan struct{} // one slot per chunk goroutine

	wg      sync.WaitGroup
	mu      sync.Mutex
	stopped bool // set once runStream stops waiting: no more workers may start
}

// start starts the goroutine loading chunk id of table ti from ch, unless runStream has stopped.
func (d *streamDispatch) start(ti, id int, ch chan *stream.Frame) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return false
	}
	d.wg.Add(1)
	go d.load(ti, id, ch)
	return true
}

// load loads one chunk from the frames on ch and frees its slot; a failure cancels the run.
func (d *streamDispatch) load(ti, id int, ch chan *stream.Frame) {
	ctx := d.ctx
	defer d.wg.Done()
	defer func() { <-d.sem }()
	next := func() (*stream.Frame, error) {
		select {
		case f, ok := <-ch:
			if !ok {
				if err := context.Cause(ctx); err != nil {
					return nil, err
				}
				return nil, errors.New("stream ended inside the chunk")
			}
			return f, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	if err := d.l.loadStreamChunk(ctx, ti, id, next); err != nil {
		d.cancel(d.l.streamChunkError(ctx, err))
	}
}

// read reads the stream's frames and hands each to its chunk's goroutine, closing readDone when it stops.
func (d *streamDispatch) read(r *stream.Reader, readDone chan struct{}) {
	ctx, l := d.ctx, d.l
	defer close(readDone)
	open := map[chunkKey]chan *stream.Frame{}
	defer func() {
		for _, ch := range open {
			close(ch)
		}
	}()
	for {
		f, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			d.cancel(streamError(err)) // no-op when a failure elsewhere came first (and closed the input)
			return
		}
		k := chunkKey{f.Table, f.Chunk}
		if l.done[f.Name][f.Chunk] {
			f.Release() // loaded by an earlier run: the reader has verified it, nothing to do
			continue
		}
		ch := open[k]
		if ch == nil {
			select {
			case d.sem <- struct{}{}:
			case <-ctx.Done():
				f.Release()
				return
			}
			ch = make(chan *stream.Frame, 2)
			if !d.start(f.Table, f.Chunk, ch) {
				f.Release()
				return
			}
			open[k] = ch
		}
		select {
		case ch <- f:
		case <-ctx.Done():
			f.Release()
			return
		}
		if f.Kind == stream.KindChunkEnd {
			close(ch)
			delete(open, k)
		}
	}
}

// streamChunkError explains a chunk failure on a stream: the data is gone, so it is not retried.
func (l *loader) streamChunkError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		// Interrupted, or another chunk or the stream failed first: that error is the cause.
		if c := context.Cause(ctx); c != nil {
			return c
		}
	}
	if errors.Is(err, stream.ErrCorrupt) || errors.Is(err, stream.ErrTruncated) {
		return err // a damaged frame found by this chunk's decoder, already explained
	}
	if hasHint(err) {
		return err
	}
	if retry.Transient(err) {
		return cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("lost the target connection: %w", err),
			"a stream cannot be replayed: re-run the whole pipeline (pgcopyout --target ... | pgcopyin); loaded chunks are kept and skipped")
	}
	return cliutil.WithHint(cliutil.ExitFailure, err, "that chunk was rolled back; fix the cause and re-run the pipeline (loaded chunks are kept and skipped)")
}

// runDir loads the chunks of a stream directory with -j workers, retrying a chunk on transient
// faults (its file can be read again).
func (l *loader) runDir(ctx context.Context, d *stream.Dir) error {
	var todo []stream.DirChunk
	for _, c := range d.Chunks() {
		if !l.done[c.Name][c.Chunk] {
			todo = append(todo, c)
		}
	}
	return workpool.ForEach(ctx, l.jobs, todo, func(ctx context.Context, c stream.DirChunk) error { // the first failure stops the others
		return l.loadDirChunk(ctx, d, c)
	})
}

func (l *loader) loadDirChunk(ctx context.Context, d *stream.Dir, c stream.DirChunk) error {
	p := l.retryPolicy()
	p.OnRetry = func(attempt int, err error, wait time.Duration) {
		fmt.Fprintf(l.stderr, "pgcopyin: table %s chunk %d: %v; retrying in %s (attempt %d)\n", c.Name, c.Chunk, err, wait, attempt+1)
	}
	attempt := 0
	err := p.Do(ctx, func(ctx context.Context) error {
		attempt++
		if attempt > 1 {
			// A commit whose reply was lost may have happened: never load a chunk twice.
			if snap, ok, err := l.recorded(ctx, c); err != nil {
				return err
			} else if ok {
				l.chunkDone(c.Table, snap, 0, 0, 0)
				return nil
			}
		}
		cr, err := d.Open(c.Table, c.Chunk)
		if err != nil {
			return permanent{err}
		}
		defer cr.Close()
		err = l.loadChunk(ctx, c.Table, c.Chunk, func() (*stream.Frame, error) {
			f, err := cr.Next()
			if err != nil {
				return nil, permanent{err}
			}
			return f, nil
		})
		return err
	})
	if err != nil && ctx.Err() == nil {
		var pe permanent
		if errors.As(err, &pe) {
			return cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("read stream directory: %w", pe.err),
				"the chunk file is damaged; nothing of that chunk was committed: write the directory again with pgcopyout -o")
		}
		if hasHint(err) {
			return err
		}
		return cliutil.WithHint(cliutil.ExitFailure, err, "that chunk was rolled back; fix the cause and re-run pgcopyin (loaded chunks are kept and skipped)")
	}
	return err
}

// hasHint reports whether err already tells the operator what to do.
func hasHint(err error) bool {
	var ee *cliutil.ExitError
	return errors.As(err, &ee) && ee.Hint != ""
}

// permanent marks a stream error so retry.Transient never treats it as a lost connection.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// recorded reports whether chunk c is already in copy_chunks, and the snapshot it was read under.
func (l *loader) recorded(ctx context.Context, c stream.DirChunk) (string, bool, error) {
	conn, err := l.conn(ctx)
	if err != nil {
		return "", false, err
	}
	defer l.release(conn)
	var snap string
	err = conn.QueryRow(ctx, "SELECT snapshot FROM "+quoteSchema(l.cfg.StateSchema)+".copy_chunks WHERE table_name = $1 AND chunk = $2", c.Name, c.Chunk).Scan(&snap)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return snap, err == nil, err
}
