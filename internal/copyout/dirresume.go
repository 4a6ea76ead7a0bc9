package copyout

import (
	"fmt"
	"io"

	"github.com/pgferry/pgferry/internal/stream"
)

// dirState reads the unfinished dump an interrupted pgcopyout -o DIR left, as the plan to reuse
// and the chunks already written, so the re-run writes only the chunks DIR lacks (nil when DIR
// holds no dump). stream.NewDirWriter checks the re-run continues that dump.
func dirState(dir string, stderr io.Writer) (*targetState, error) {
	u, err := stream.ReadUnfinishedDir(dir)
	if err != nil || u == nil {
		return nil, err
	}
	ts := &targetState{plans: map[string][]Chunk{}, done: map[string]map[int]bool{}}
	chunks := 0
	for _, t := range u.Header.Tables {
		ts.done[t.Name] = map[int]bool{}
		for _, c := range t.Chunks {
			ts.plans[t.Name] = append(ts.plans[t.Name], Chunk{ID: c.ID, Kind: c.Kind, Lower: c.Lower, Upper: c.Upper})
			// written, or skipped by the first run (already on its --target): not written again
			ts.done[t.Name][c.ID] = u.Done[t.Name][c.ID] || c.Skip
			chunks++
		}
	}
	fmt.Fprintf(stderr, "pgcopyout: resuming the unfinished dump in %s: %d of %d chunks are there and are kept\n", dir, u.Files, chunks)
	return ts, nil
}
