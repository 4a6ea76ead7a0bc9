package applyplan

import (
	"sync"

	"github.com/pgferry/pgferry/internal/sqlstmt"
)

// Gate holds back the statements on tables that are not ready yet: pgcopyin opens a table once
// its rows are loaded, so its index builds overlap the copy of the tables still loading.
type Gate struct {
	mu    sync.Mutex
	open  map[string]bool
	mixed map[string]bool // tables whose rows were read under several snapshots (Mix)
	all   bool
	wake  func()
}

// NewGate returns a gate with every table closed.
func NewGate() *Gate { return &Gate{open: map[string]bool{}, mixed: map[string]bool{}} }

// Mix marks table key as read under several snapshots, before Open: its unique indexes that are
// not its key are held back (Plan.MarkUnique).
func (g *Gate) Mix(key string) {
	g.mu.Lock()
	g.mixed[key] = true
	g.mu.Unlock()
}

// mixedTable reports whether Mix marked table key.
func (g *Gate) mixedTable(key string) bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mixed[key]
}

// Open lets the statements on table key (unquoted schema.name) run.
func (g *Gate) Open(key string) {
	g.mu.Lock()
	g.open[key] = true
	wake := g.wake
	g.mu.Unlock()
	if wake != nil {
		wake()
	}
}

// OpenAll lets every statement run, including those on tables the gate was never told about.
func (g *Gate) OpenAll() {
	g.mu.Lock()
	g.all = true
	wake := g.wake
	g.mu.Unlock()
	if wake != nil {
		wake()
	}
}

// ready reports whether a step may run as far as the gate is concerned. Settings always may; a
// barrier (a statement whose tables are unknown) waits for OpenAll, as do statements naming a
// table without its schema.
func (g *Gate) ready(s Step) bool {
	if g == nil || s.Kind == sqlstmt.KSet {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.all {
		return true
	}
	if s.Barrier {
		return false
	}
	for _, t := range s.Tables {
		if !g.open[t] {
			return false
		}
	}
	return true
}

// onChange registers the function that wakes the plan's scheduler.
func (g *Gate) onChange(f func()) {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.wake = f
	g.mu.Unlock()
}
