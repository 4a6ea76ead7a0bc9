package verify

import (
	"io"
	"sync"

	"github.com/pgferry/pgferry/internal/progress"
)

// scanProgress reports the hash scan of both sides on stderr (internal/progress: labelled lines
// into a file or pipe, a redrawn line on a terminal). Rows and bytes count both sides; a chunk's
// bytes are its share of the table's heap. A table is done when every chunk of both sides is.
type scanProgress struct {
	rep  *progress.Reporter
	mu   sync.Mutex
	left map[*pair]int // chunks still to scan, both sides
}

// newProgress starts reporting the scan of pairs (nothing with --progress none).
func newProgress(cfg Config, diag io.Writer, pairs []*pair) *scanProgress {
	mode := cfg.Progress
	if mode == "" {
		mode = progress.Auto
	}
	sp := &scanProgress{rep: progress.New(diag, mode, "pgverify"), left: map[*pair]int{}}
	if cfg.ProgressEvery > 0 {
		sp.rep.SetInterval(cfg.ProgressEvery)
	}
	for _, p := range pairs {
		if p.Reason == "" {
			sp.rep.AddTable(p.Name, 2*p.EstRows, p.Src.Bytes+p.Dst.Bytes)
		}
	}
	sp.rep.Start()
	return sp
}

// plan records how many chunks each side of p is read in.
func (sp *scanProgress) plan(p *pair, chunks int) {
	sp.mu.Lock()
	sp.left[p] += chunks
	sp.mu.Unlock()
}

func (sp *scanProgress) begin(p *pair) { sp.rep.Begin(p.Name) }

// end counts one finished chunk of side si of p that held rows rows.
func (sp *scanProgress) end(p *pair, si, chunks int, rows int64) {
	t := p.Src
	if si == 1 {
		t = p.Dst
	}
	sp.rep.Add(p.Name, rows, t.Bytes/int64(max(chunks, 1)))
	sp.rep.End(p.Name)
	sp.mu.Lock()
	sp.left[p]--
	done := sp.left[p] == 0
	sp.mu.Unlock()
	if done {
		sp.rep.TableDone(p.Name)
	}
}

// finish prints the last line: done, or interrupted/failed with err.
func (sp *scanProgress) finish(err error) { sp.rep.Finish(err) }
