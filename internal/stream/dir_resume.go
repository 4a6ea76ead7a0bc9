package stream

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// UnfinishedDir is what an interrupted pgcopyout -o DIR left: its header (the plan) and the
// chunks whose files are complete (a chunk file appears, renamed from .tmp, only once synced).
type UnfinishedDir struct {
	Header *Header
	Done   map[string]map[int]bool // table name -> chunk ids with a complete file
	Files  int                     // complete chunk files
}

// ErrOtherDump is a directory holding a dump that a run cannot resume: another source, other
// tables, or another plan.
var ErrOtherDump = errors.New("the directory holds another dump")

// ReadUnfinishedDir reads the unfinished dump in dir: nil when dir holds no header.json, an error
// when it holds a finished dump (end.json) or an unreadable header.
func ReadUnfinishedDir(dir string) (*UnfinishedDir, error) {
	js, err := os.ReadFile(filepath.Join(dir, dirHeader))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read stream directory: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, dirEnd)); err == nil {
		return nil, fmt.Errorf("%s already holds a finished dump (%s is written last): load it with pgcopyin -i %s, or dump into an empty directory", dir, dirEnd, dir)
	}
	h, err := parseHeader(js)
	if err != nil {
		return nil, fmt.Errorf("read stream directory %s: %w; dump into an empty directory", dir, err)
	}
	u := &UnfinishedDir{Header: h, Done: map[string]map[int]bool{}}
	for ti, t := range h.Tables {
		for _, c := range t.Chunks {
			if c.Skip {
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, ChunkFile(ti, c.ID))); err == nil {
				if u.Done[t.Name] == nil {
					u.Done[t.Name] = map[int]bool{}
				}
				u.Done[t.Name][c.ID] = true
				u.Files++
			}
		}
	}
	return u, nil
}

// resumeDir checks that h, the plan of this run, continues the dump u in dir (same source, same
// tables in the same order with the same columns, format and chunk plan, and skipping exactly the
// chunks whose files are there), removes what the interrupted run left half-written and the files
// of tables h copies again whole (Restart), and returns the header to store: h, with the chunks
// the directory holds listed as present.
func resumeDir(dir string, u *UnfinishedDir, h *Header) (*Header, error) {
	if err := sameDump(u, h); err != nil {
		return nil, fmt.Errorf("resume the dump in %s: %w: %w; dump into an empty directory (or delete this one to start afresh)", dir, ErrOtherDump, err)
	}
	tmps, _ := filepath.Glob(filepath.Join(dir, "*.chunk.tmp"))
	for _, f := range tmps {
		if err := os.Remove(f); err != nil {
			return nil, fmt.Errorf("resume the dump in %s: %w", dir, err)
		}
	}
	out := *h
	out.Tables = slices.Clone(h.Tables)
	for ti := range out.Tables {
		t := &out.Tables[ti]
		if t.Restart {
			files, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("t%05d-c*.chunk", ti)))
			for _, f := range files {
				if err := os.Remove(f); err != nil {
					return nil, fmt.Errorf("resume the dump in %s: %w", dir, err)
				}
			}
			continue
		}
		t.Chunks = slices.Clone(t.Chunks)
		for ci := range t.Chunks {
			if u.Done[t.Name][t.Chunks[ci].ID] {
				t.Chunks[ci].Skip = false
			}
		}
	}
	return &out, nil
}

// sameDump says how h differs from the dump u holds, nil when it continues it.
func sameDump(u *UnfinishedDir, h *Header) error {
	old := u.Header
	if a, b := old.Source, h.Source; a != nil && b != nil &&
		(a.DatabaseOID != b.DatabaseOID || a.Database != b.Database || a.SystemID != "" && b.SystemID != "" && a.SystemID != b.SystemID) {
		return fmt.Errorf("it was read from database %s, this run reads %s", a.Database, b.Database)
	}
	if old.Codec != h.Codec || old.SnapshotMode != h.SnapshotMode {
		return fmt.Errorf("it was written with --codec %s --snapshot %s, this run uses --codec %s --snapshot %s", old.Codec, old.SnapshotMode, h.Codec, h.SnapshotMode)
	}
	if names(old) != names(h) {
		return fmt.Errorf("it holds tables %s, this run copies %s (other filters?)", names(old), names(h))
	}
	for ti, t := range h.Tables {
		o := old.Tables[ti]
		if !slices.Equal(o.Columns, t.Columns) || o.Format != t.Format || !slices.Equal(o.Key, t.Key) {
			return fmt.Errorf("table %s: its columns, key or format changed", t.Name)
		}
		if t.Restart {
			continue
		}
		if why := planDiff(o.Chunks, t.Chunks, u.Done[t.Name]); why != "" {
			return fmt.Errorf("table %s: this run's chunk plan is not the directory's (%s)", t.Name, why)
		}
	}
	return nil
}

func names(h *Header) string {
	var b strings.Builder
	for i, t := range h.Tables {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t.Name)
	}
	return b.String()
}

// planDiff says how cur differs from the same chunks with the same bounds, skipping the ones done
// (and those the old plan skipped itself); "" when it does not.
func planDiff(old, cur []Chunk, done map[int]bool) string {
	if len(old) != len(cur) {
		return fmt.Sprintf("%d chunks, the directory's %d", len(cur), len(old))
	}
	for i, o := range old {
		c := cur[i]
		if o.ID != c.ID || o.Kind != c.Kind || !sameBound(o.Lower, c.Lower) || !sameBound(o.Upper, c.Upper) {
			return fmt.Sprintf("chunk %d: other bounds", c.ID)
		}
		if want := done[c.ID] || o.Skip; c.Skip != want {
			return fmt.Sprintf("chunk %d: skip %v, its file says %v", c.ID, c.Skip, want)
		}
	}
	return ""
}

func sameBound(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }
