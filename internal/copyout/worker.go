package copyout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/capture"
	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/progress"
	"github.com/pgferry/pgferry/internal/retry"
	"github.com/pgferry/pgferry/internal/stream"
)

// job is one chunk to read.
type job struct {
	ti     int // index in the header's tables
	tp     *TablePlan
	c      *Chunk
	shared bool // import the coordinator's exported snapshot
	binary bool // COPY in binary format
}

// copier holds what the workers share.
type copier struct {
	stderr     io.Writer
	source     string
	shared     *sharedSnapshot
	codec      stream.Codec
	out        stream.FrameWriter
	prog       *progress.Reporter
	frameSize  int
	retry      retry.Policy
	netTimeout time.Duration // dbconn.Options.NetTimeout of the worker connections
	hold       int           // bytes of a chunk held back before its first frame is written
	// chunkDone is called after a chunk's end frame was written.
	chunkDone func(j *job)
	// connects counts source connections opened by workers (for tests).
	connects atomic.Int64
}

// worker reads jobs until the channel closes or a job fails.
func (cp *copier) worker(ctx context.Context, jobs <-chan *job) error {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for j := range jobs {
		written := false
		pol := cp.retry
		pol.OnRetry = func(attempt int, err error, wait time.Duration) {
			fmt.Fprintf(cp.stderr, "pgcopyout: lost the source connection in %s chunk %d (%v); retrying in %s (attempt %d of %d)\n",
				j.tp.Key(), j.c.ID, err, wait, attempt+1, pol.Attempts)
		}
		err := pol.Do(ctx, func(ctx context.Context) error {
			if conn == nil || conn.IsClosed() {
				c, err := connectWorker(ctx, cp.source, cp.netTimeout)
				if err != nil {
					return err
				}
				cp.connects.Add(1)
				conn = c
			}
			err := cp.copyChunk(ctx, conn, j, &written)
			if err != nil {
				if conn.IsClosed() || retry.Transient(err) {
					conn.Close(context.Background())
					conn = nil
				} else if _, rerr := conn.Exec(ctx, "ROLLBACK"); rerr != nil {
					conn.Close(context.Background())
					conn = nil
				}
				if written {
					return retry.Permanent(&partialError{table: j.tp.Key(), chunk: j.c.ID, err: err})
				}
			}
			return err
		})
		if err != nil {
			if ctx.Err() != nil { // interrupted (or another worker failed): whatever the server said
				return ctx.Err()
			}
			var pe *partialError
			if errors.As(err, &pe) {
				pe.est, pe.buffer = j.c.EstBytes, int64(cp.hold)
				return cliutil.WithHint(cliutil.ExitFailure, pe, pe.hint())
			}
			return fmt.Errorf("copy table %s chunk %d: %w", j.tp.Key(), j.c.ID, err)
		}
		cp.chunkDone(j)
	}
	return nil
}

// testHook, when set by tests, runs at "begin" (chunk transaction open) and "frame" (a frame written).
var testHook func(point string, conn *pgx.Conn, j *job)

// partialError is a failure after some of a chunk's frames were written: the chunk cannot be redone
// within this stream, so it is marked retry.Permanent (its message may well say "connection reset").
type partialError struct {
	table       string
	chunk       int
	err         error
	est, buffer int64 // the chunk's estimated size, --retry-buffer
}

func (e *partialError) Error() string {
	return fmt.Sprintf("copy table %s chunk %d: failed after part of it was streamed (more than --retry-buffer, %s, so it cannot be read again within this stream): %v",
		e.table, e.chunk, progress.Bytes(e.buffer), e.err)
}

// hint says what to re-run, and how to make the next such loss cost only a retry.
func (e *partialError) hint() string {
	return fmt.Sprintf("re-run the copy with --target: 'pgcopyout --target TARGET ... | pgcopyin --target TARGET ...' "+
		"(re-running scripts/migrate.sh does this): the chunks pgcopyin committed are skipped and chunk %d of %s is read again whole; "+
		"so that a lost connection costs only a retry, raise --retry-buffer above the chunk's size (about %s) or lower --split-size",
		e.chunk, e.table, progress.Bytes(e.est))
}

// copyChunk reads one chunk in its own transaction and writes its frames and end frame.
func (cp *copier) copyChunk(ctx context.Context, conn *pgx.Conn, j *job, written *bool) error {
	id, snap, err := cp.beginChunk(ctx, conn, j)
	if err != nil {
		return err
	}
	if testHook != nil {
		testHook("begin", conn, j)
	}
	if !cp.shared.oneOff { // the table's capture still holds, as this chunk's snapshot sees it
		if err := capture.CheckCopied(ctx, conn, cp.shared.schema, captureName(j.tp.Table)); err != nil {
			return err
		}
	}
	name := j.tp.Key()
	cp.prog.Begin(name)
	defer cp.prog.End(name)
	fc := &frameCutter{cp: cp, j: j, written: written, limit: cp.frameSize}
	sql := j.c.CopySQL(j.tp.Table)
	if j.binary {
		fc.bin = &binScanner{}
		sql += " (FORMAT binary)"
	}
	if _, err := conn.PgConn().CopyTo(ctx, fc, sql); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if err := fc.flush(true); err != nil {
		return err
	}
	if err := fc.release(); err != nil {
		return err
	}
	if j.shared {
		if err := cp.shared.checkCtid(j, id, true); err != nil {
			return err
		}
	}
	// The chunk's data is complete; its read-only transaction has nothing to commit.
	if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
		conn.Close(context.Background())
	}
	*written = true
	return cp.out.EndChunk(j.ti, j.c.ID, stream.ChunkSummary{Rows: fc.rows, Bytes: fc.bytes, Frames: int64(fc.seq), Snapshot: snap})
}

// beginChunk opens j's transaction and returns the exported snapshot it imported (shared chunks;
// a lost one is renewed first) and the snapshot it reads under.
func (cp *copier) beginChunk(ctx context.Context, conn *pgx.Conn, j *job) (id, snap string, err error) {
	if !j.shared {
		snap, err = beginChunkTx(ctx, conn, "")
		return "", snap, err
	}
	id = cp.shared.current()
	snap, err = beginChunkTx(ctx, conn, id)
	if errors.Is(err, errSnapshotLost) {
		if _, rerr := conn.Exec(ctx, "ROLLBACK"); rerr != nil {
			return "", "", rerr
		}
		if id, err = cp.shared.renew(ctx, id); err != nil {
			return "", "", err
		}
		snap, err = beginChunkTx(ctx, conn, id)
	}
	if err != nil {
		return "", "", err
	}
	return id, snap, cp.shared.checkCtid(j, id, false)
}

// frameCutter receives COPY data from pgx (text, or binary when bin is set) and cuts it into
// frames on row boundaries, counting rows as they arrive.
type frameCutter struct {
	cp      *copier
	j       *job
	written *bool
	limit   int
	bin     *binScanner // nil for text
	buf     []byte
	cut     int   // buf[:cut] holds complete rows
	pending int64 // rows in buf[:cut]
	cbuf    []byte
	seq     int
	rows    int64
	bytes   int64
	// The chunk's first frames, up to copier.hold bytes, are held until the chunk ends or
	// outgrows them: a lost connection before anything was written retries the chunk.
	held      []heldFrame
	heldBytes int
	streaming bool // held frames were written: the rest goes out as it comes
}

type heldFrame struct {
	seq       int
	raw, comp []byte
}

// emit writes a frame, or holds a copy of it while the chunk still fits in copier.hold.
func (f *frameCutter) emit(raw, comp []byte) error {
	if !f.streaming && f.heldBytes+len(raw) <= f.cp.hold {
		f.held = append(f.held, heldFrame{seq: f.seq, raw: bytes.Clone(raw), comp: bytes.Clone(comp)})
		f.heldBytes += len(raw)
		return nil
	}
	if err := f.release(); err != nil {
		return err
	}
	*f.written = true
	return f.cp.out.WriteData(f.j.ti, f.j.c.ID, f.seq, raw, comp)
}

// release writes the held frames; from then on frames are written as they are cut.
func (f *frameCutter) release() error {
	f.streaming = true
	for _, h := range f.held {
		*f.written = true
		if err := f.cp.out.WriteData(f.j.ti, f.j.c.ID, h.seq, h.raw, h.comp); err != nil {
			return err
		}
	}
	f.held, f.heldBytes = nil, 0
	return nil
}

func (f *frameCutter) Write(p []byte) (int, error) {
	base := len(f.buf)
	f.buf = append(f.buf, p...)
	if f.bin != nil {
		n, end, err := f.bin.feed(p)
		if err != nil {
			return 0, err
		}
		if end >= 0 {
			f.cut, f.pending = base+end, f.pending+n
		}
	} else if i := bytes.LastIndexByte(p, '\n'); i >= 0 { // text: every newline ends a row
		f.cut = base + i + 1
		f.pending += int64(bytes.Count(p[:i+1], []byte{'\n'}))
	}
	if len(f.buf) >= f.limit {
		if err := f.flush(false); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flush writes the buffered complete rows as frames (all of the buffer when final).
func (f *frameCutter) flush(final bool) error {
	if final && f.bin != nil && !f.bin.complete() {
		return fmt.Errorf("%w: it ended without its trailer", errBinaryFraming)
	}
	for len(f.buf) > 0 {
		n, rows := f.cut, f.pending
		switch {
		case final:
			n = len(f.buf)
		case n == 0 && len(f.buf) >= stream.MaxFrameSize:
			// One row bigger than a frame: readers do not need row boundaries. Its row is
			// counted in the frame where it ends.
			n, rows = stream.MaxFrameSize, 0
		case n == 0:
			return nil // wait for the rest of the row
		}
		if n > stream.MaxFrameSize {
			n = stream.MaxFrameSize
			if f.cut > n { // rows past the cut are counted with a later frame
				rows = 0
			}
		}
		raw := f.buf[:n]
		var comp []byte
		if f.cp.codec.Kind != stream.CodecNone {
			c, err := stream.Compress(f.cp.codec, f.cbuf, raw)
			if err != nil {
				return err
			}
			f.cbuf, comp = c, c
		}
		if err := f.emit(raw, comp); err != nil {
			return err
		}
		if testHook != nil {
			testHook("frame", nil, f.j)
		}
		f.seq++
		f.rows += rows
		f.pending -= rows
		f.bytes += int64(n)
		f.cp.prog.Add(f.j.tp.Key(), rows, int64(n))
		rest := copy(f.buf, f.buf[n:])
		f.buf = f.buf[:rest]
		f.cut = max(f.cut-n, 0)
		if !final && len(f.buf) < f.limit {
			return nil
		}
	}
	return nil
}
