package copyin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pgferry/pgferry/internal/cliutil"
	"github.com/pgferry/pgferry/internal/retry"
	"github.com/pgferry/pgferry/internal/stream"
)

// replay keeps a copy of the frames a chunk has taken from the stream, up to limit bytes of
// data, so that a chunk whose target connection was lost can be loaded again from memory: the
// frames already fed are replayed, then the rest are read from the stream as before. pgconn may
// leave a failed attempt's reader running for a moment; mu keeps the frames it still takes in
// order, and kept, so the next attempt replays them instead of missing them.
type replay struct {
	next  func() (*stream.Frame, error)
	limit int64

	mu    sync.Mutex
	kept  []*stream.Frame
	bytes int64
	over  bool // more than limit was fed: the chunk cannot be replayed
}

// source returns the next function of one attempt: kept frames first, then the stream's.
func (r *replay) source() func() (*stream.Frame, error) {
	pos := 0
	return func() (*stream.Frame, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if pos < len(r.kept) {
			pos++
			f := *r.kept[pos-1]
			return &f, nil
		}
		f, err := r.next()
		if err != nil || r.over {
			return f, err
		}
		if err := f.Decode(); err != nil {
			f.Release()
			return nil, streamError(err)
		}
		if r.bytes += int64(len(f.Data)); r.bytes > r.limit {
			r.over, r.kept = true, nil
			return f, nil
		}
		k := &stream.Frame{Kind: f.Kind, Table: f.Table, Name: f.Name, Chunk: f.Chunk, Seq: f.Seq, Summary: f.Summary, Data: bytes.Clone(f.Data)}
		r.kept = append(r.kept, k)
		pos++
		return f, nil
	}
}

func (r *replay) overflowed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.over
}

// loadStreamChunk loads one chunk of a stream, retrying it from memory after a lost target
// connection while the chunk fits in --retry-buffer.
func (l *loader) loadStreamChunk(ctx context.Context, ti, id int, next func() (*stream.Frame, error)) error {
	if l.cfg.RetryBuffer <= 0 {
		return l.loadChunk(ctx, ti, id, next)
	}
	name := l.targets[ti].name
	r := &replay{next: next, limit: l.cfg.RetryBuffer}
	pol := l.retryPolicy()
	pol.OnRetry = func(attempt int, err error, wait time.Duration) {
		var ec *errChunk
		if errors.As(err, &ec) {
			err = ec.err
		}
		fmt.Fprintf(l.stderr, "pgcopyin: lost the target connection in %s chunk %d (%v); retrying in %s (attempt %d of %d)\n",
			name, id, err, wait, attempt+1, pol.Attempts)
	}
	attempt := 0
	return pol.Do(ctx, func(ctx context.Context) error {
		attempt++
		if attempt > 1 {
			// A commit whose reply was lost may have happened: never load a chunk twice.
			if snap, ok, err := l.recorded(ctx, stream.DirChunk{Name: name, Table: ti, Chunk: id}); err != nil {
				return err
			} else if ok {
				l.chunkDone(ti, snap, 0, 0, 0)
				return nil
			}
		}
		err := l.loadChunk(ctx, ti, id, r.source())
		if err != nil && r.overflowed() && retry.Transient(err) && ctx.Err() == nil {
			// Permanent: the error must not look transient to the retry loop (its text may say
			// "connection reset").
			return retry.Permanent(cliutil.WithHint(cliutil.ExitFailure, fmt.Errorf("lost the target connection in %s chunk %d after more than --retry-buffer (%d bytes) of it was read from the stream: %v", name, id, l.cfg.RetryBuffer, err),
				fmt.Sprintf("a stream cannot be replayed past --retry-buffer: re-run the copy with --target: 'pgcopyout --target TARGET ... | pgcopyin --target TARGET ...' "+
					"(re-running scripts/migrate.sh does this): the chunks already committed are skipped and chunk %d of %s is loaded again whole; "+
					"so that a lost connection costs only a retry, raise --retry-buffer above the chunk's size or lower pgcopyout's --split-size", id, name)))
		}
		return err
	})
}

// retryPolicy is the policy of a chunk: Config.Retry, else retry.Default.
func (l *loader) retryPolicy() retry.Policy {
	if l.cfg.Retry != nil {
		return *l.cfg.Retry
	}
	return retry.Default
}
