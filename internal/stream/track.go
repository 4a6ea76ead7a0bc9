package stream

import (
	"fmt"
	"sort"
	"strings"
)

type chunkKey struct{ table, chunk int }

type chunkState struct {
	seq    uint32 // next expected sequence number
	bytes  int64
	frames int64
}

// tracker enforces the frame rules shared by writers and readers: known, planned, non-skipped
// chunks; sequence numbers in order; at most Jobs chunks open; each chunk ended once; counts match.
type tracker struct {
	h      *Header
	only   *chunkKey // set for a chunk file: frames of other chunks are errors
	open   map[chunkKey]*chunkState
	ended  map[chunkKey]bool
	totals Totals
}

func newTracker(h *Header) *tracker {
	return &tracker{h: h, open: map[chunkKey]*chunkState{}, ended: map[chunkKey]bool{}}
}

// where names table index ti and chunk id c for messages (best effort on bad indexes).
func (t *tracker) where(ti, c int) (string, int) {
	if ti >= 0 && ti < len(t.h.Tables) {
		return t.h.Tables[ti].Name, c
	}
	return fmt.Sprintf("#%d", ti), c
}

// state returns the open state of chunk (ti, c), opening it if allowed.
func (t *tracker) state(ti, c int) (*chunkState, error) {
	k := chunkKey{ti, c}
	if st, ok := t.open[k]; ok {
		return st, nil
	}
	if t.only != nil && k != *t.only {
		return nil, fmt.Errorf("frame of another chunk (table index %d chunk %d) in this chunk's file", ti, c)
	}
	if ti < 0 || ti >= len(t.h.Tables) {
		return nil, fmt.Errorf("table index %d out of range (header lists %d tables)", ti, len(t.h.Tables))
	}
	ch := t.h.Chunk(ti, c)
	if ch == nil {
		return nil, fmt.Errorf("chunk %d is not in the header's plan", c)
	}
	if ch.Skip {
		return nil, fmt.Errorf("chunk %d is marked skip in the header but has frames", c)
	}
	if t.ended[k] {
		return nil, fmt.Errorf("chunk %d has frames after its end", c)
	}
	if len(t.open) >= t.h.Jobs {
		return nil, fmt.Errorf("more than jobs=%d chunks open at once (the header's limit)", t.h.Jobs)
	}
	st := &chunkState{}
	t.open[k] = st
	return st, nil
}

// data records a data frame of n raw bytes.
func (t *tracker) data(ti, c int, seq uint32, n int) error {
	st, err := t.state(ti, c)
	if err != nil {
		return err
	}
	if seq != st.seq {
		return fmt.Errorf("data frame sequence %d, expected %d (frame lost or reordered)", seq, st.seq)
	}
	st.seq++
	st.frames++
	st.bytes += int64(n)
	return nil
}

// end records a chunk end; zero Frames/Bytes in s are filled in, non-zero ones must match.
func (t *tracker) end(ti, c int, seq uint32, s *ChunkSummary, fill bool) error {
	st, err := t.state(ti, c)
	if err != nil {
		return err
	}
	if seq != st.seq {
		return fmt.Errorf("chunk end sequence %d, expected %d (frame lost or reordered)", seq, st.seq)
	}
	if fill && s.Frames == 0 && s.Bytes == 0 {
		s.Frames, s.Bytes = st.frames, st.bytes
	}
	if s.Frames != st.frames || s.Bytes != st.bytes {
		return fmt.Errorf("chunk end says %d frames/%d bytes, stream held %d frames/%d bytes", s.Frames, s.Bytes, st.frames, st.bytes)
	}
	if s.Rows < 0 {
		return fmt.Errorf("chunk end says %d rows", s.Rows)
	}
	if s.Snapshot == "" {
		s.Snapshot = t.h.Position
	}
	if !validSnapshot(s.Snapshot) {
		return fmt.Errorf("chunk end has no valid snapshot (%q) and the header has no position", s.Snapshot)
	}
	k := chunkKey{ti, c}
	delete(t.open, k)
	t.ended[k] = true
	t.totals.Chunks++
	t.totals.Rows += s.Rows
	t.totals.Bytes += st.bytes
	t.totals.Frames += st.frames
	return nil
}

// finish checks that no chunk is open and every planned, non-skipped chunk ended.
func (t *tracker) finish() error {
	if len(t.open) > 0 {
		return fmt.Errorf("chunks still open: %s", t.openList())
	}
	var missing []string
	for ti, tb := range t.h.Tables {
		for _, c := range tb.Chunks {
			if !c.Skip && !t.ended[chunkKey{ti, c.ID}] {
				missing = append(missing, fmt.Sprintf("%s chunk %d", tb.Name, c.ID))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("planned chunks never sent: %s", list(missing))
	}
	return nil
}

// openList names the open chunks, sorted.
func (t *tracker) openList() string {
	var s []string
	for k := range t.open {
		name, c := t.where(k.table, k.chunk)
		s = append(s, fmt.Sprintf("%s chunk %d", name, c))
	}
	sort.Strings(s)
	return list(s)
}

// firstOpen returns one open chunk (the lowest), or ok=false.
func (t *tracker) firstOpen() (ti, c int, ok bool) {
	first := true
	for k := range t.open {
		if first || k.table < ti || (k.table == ti && k.chunk < c) {
			ti, c, first = k.table, k.chunk, false
		}
	}
	return ti, c, !first
}

func list(s []string) string {
	if len(s) > 10 {
		return strings.Join(s[:10], ", ") + fmt.Sprintf(" and %d more", len(s)-10)
	}
	return strings.Join(s, ", ")
}
