// Package progress reports rows, bytes, rates and ETAs of a long copy on stderr.
package progress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pgferry/pgferry/internal/cliutil"
)

// Mode says how progress is shown.
type Mode string

// The modes of --progress.
const (
	Auto  Mode = "auto"  // a terminal: a redrawn line (or, in a pipeline, lines); else as plain
	Plain Mode = "plain" // a timestamped line every few seconds, one per finished table, a summary
	JSON  Mode = "json"  // one JSON object per line
	None  Mode = "none"  // nothing
	// lines is Auto on a terminal shared with the other tools of a pipeline (and pv): a labelled
	// line every few seconds that first clears the line pv is drawing, so pv's meter stays at the
	// bottom and nobody's line is overwritten.
	lines Mode = "lines"
)

// ParseMode checks a --progress value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(s)); m {
	case Auto, Plain, JSON, None:
		return m, nil
	case "":
		return Auto, nil
	}
	return "", fmt.Errorf("bad progress mode %q: want auto, plain, json or none", s)
}

// inPipeline reports whether this process reads or writes a pipe, i.e. shares its terminal with
// other programs of a pipeline.
var inPipeline = func() bool { return isPipe(os.Stdin) || isPipe(os.Stdout) }

func isPipe(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeNamedPipe != 0
}

// Resolve turns Auto into the mode to use for w: on a terminal a redrawn line, or labelled lines
// when the tool is part of a pipeline; into a file or pipe, plain timestamped lines.
func (m Mode) Resolve(w io.Writer) Mode {
	if m != Auto {
		return m
	}
	if !cliutil.IsTerminal(w) {
		return Plain
	}
	if inPipeline() {
		return lines
	}
	return Auto
}

// table is the progress of one table.
type table struct {
	name              string
	estRows, estBytes int64
	rows, bytes       int64
	loadRows          int64 // received, not yet committed (Loading, Settle)
	loadBytes         int64
	started, done     time.Time
	active            int
}

// Reporter collects counts from many goroutines and prints them periodically.
type Reporter struct {
	w        io.Writer
	mode     Mode
	tool     string
	interval time.Duration
	now      func() time.Time

	mu       sync.Mutex
	start    time.Time
	tables   map[string]*table
	order    []string
	rows     int64
	bytes    int64
	loadRows int64
	loadBy   int64
	loading  bool // Loading was called: lines show received and committed apart
	estRows  int64
	estBytes int64
	done     int
	lastLen  int
	outcome  string // "done", "interrupted" or "failed", set by Finish
	stop     chan struct{}
	stopped  chan struct{}
}

// New returns a reporter writing to w in mode (Auto is resolved against w).
func New(w io.Writer, mode Mode, tool string) *Reporter {
	mode = mode.Resolve(w)
	iv := time.Second
	switch mode {
	case Plain:
		iv = 10 * time.Second
	case lines:
		iv = 5 * time.Second
	}
	return &Reporter{w: w, mode: mode, tool: tool, interval: iv, now: time.Now, tables: map[string]*table{}}
}

// SetInterval changes how often a periodic report is printed (before Start).
func (r *Reporter) SetInterval(d time.Duration) { r.interval = d }

// AddTable announces a table with its estimated rows and bytes (for the ETA).
func (r *Reporter) AddTable(name string, estRows, estBytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.tables[name]; ok {
		r.estRows += estRows - t.estRows
		r.estBytes += estBytes - t.estBytes
		t.estRows, t.estBytes = estRows, estBytes
		return
	}
	r.tables[name] = &table{name: name, estRows: estRows, estBytes: estBytes}
	r.order = append(r.order, name)
	r.estRows += estRows
	r.estBytes += estBytes
}

// Begin marks one unit of work (a chunk) of table as in flight.
func (r *Reporter) Begin(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.get(name)
	if t.started.IsZero() {
		t.started = r.now()
	}
	t.active++
}

// Add counts rows and bytes moved for table.
func (r *Reporter) Add(name string, rows, bytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.get(name)
	t.rows += rows
	t.bytes += bytes
	r.rows += rows
	r.bytes += bytes
}

// Loading counts rows and bytes received for table but not yet committed (negative amounts
// take them back when the unit of work fails): the meter moves before the first commit.
func (r *Reporter) Loading(name string, rows, bytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.get(name)
	t.loadRows += rows
	t.loadBytes += bytes
	r.loadRows += rows
	r.loadBy += bytes
	r.loading = true
}

// Settle moves a committed unit of work from in flight (fromRows, fromBytes as counted by
// Loading) to done (rows, bytes as the commit reports them).
func (r *Reporter) Settle(name string, fromRows, fromBytes, rows, bytes int64) {
	r.Loading(name, -fromRows, -fromBytes)
	r.Add(name, rows, bytes)
}

// Undo takes back rows and bytes counted for a unit of work that is being redone.
func (r *Reporter) Undo(name string, rows, bytes int64) { r.Add(name, -rows, -bytes) }

// End marks one unit of work of table as finished.
func (r *Reporter) End(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.get(name).active--
}

// TableDone marks table finished and reports it (plain and json modes).
func (r *Reporter) TableDone(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.get(name)
	if !t.done.IsZero() {
		return
	}
	t.done = r.now()
	r.done++
	if t.started.IsZero() {
		t.started = t.done
	}
	el := t.done.Sub(t.started)
	switch r.mode {
	case Plain:
		fmt.Fprintf(r.w, "%s: %s%s done: %d rows, %s in %s\n", r.tool, r.stamp(), t.name, t.rows, Bytes(t.bytes), el.Round(time.Millisecond))
	case JSON:
		r.json(TableDoneEvent{Event: "table_done", Table: t.name, Rows: t.rows, Bytes: t.bytes, Elapsed: el.Seconds()})
	}
}

func (r *Reporter) get(name string) *table {
	t, ok := r.tables[name]
	if !ok {
		t = &table{name: name}
		r.tables[name] = t
		r.order = append(r.order, name)
	}
	return t
}

// Start begins periodic reports; Stop ends them with a final report.
func (r *Reporter) Start() {
	r.mu.Lock()
	r.start = r.now()
	r.mu.Unlock()
	if r.mode == None {
		return
	}
	r.stop = make(chan struct{})
	r.stopped = make(chan struct{})
	go func() {
		defer close(r.stopped)
		tk := time.NewTicker(r.interval)
		defer tk.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-tk.C:
				r.report(false)
			}
		}
	}()
}

// Stop ends periodic reports and prints the final one, for work that finished.
func (r *Reporter) Stop() { r.Finish(nil) }

// Finish ends periodic reports and prints the final one: "done in" when err is nil, else
// "interrupted after" or "failed after", with what was counted until then.
func (r *Reporter) Finish(err error) {
	if r.stop != nil {
		close(r.stop)
		<-r.stopped
		r.stop = nil
	}
	r.mu.Lock()
	switch {
	case err == nil:
		r.outcome = "done"
	case errors.Is(err, context.Canceled):
		r.outcome = "interrupted"
	default:
		r.outcome = "failed"
	}
	r.mu.Unlock()
	if r.mode != None {
		r.report(true)
	}
}

// stamp is the timestamp that starts a plain line (logs of a days-long migration need dates).
func (r *Reporter) stamp() string {
	if r.mode != Plain {
		return ""
	}
	return r.now().UTC().Format("2006-01-02 15:04:05Z ")
}

// TableDoneEvent is the json progress record of a finished table.
type TableDoneEvent struct {
	Event   string  `json:"event"` // "table_done"
	Table   string  `json:"table"`
	Rows    int64   `json:"rows"`
	Bytes   int64   `json:"bytes"`
	Elapsed float64 `json:"elapsed_s"`
}

// Snapshot is the state of the whole copy at one moment (the json progress record). Rows and
// Bytes are done (committed, for a loader); LoadingRows and LoadingBytes are received, in flight.
type Snapshot struct {
	Event        string        `json:"event"` // "progress", "done", "interrupted" or "failed"
	Elapsed      float64       `json:"elapsed_s"`
	Rows         int64         `json:"rows"`
	Bytes        int64         `json:"bytes"`
	LoadingRows  int64         `json:"loading_rows"`
	LoadingBytes int64         `json:"loading_bytes"`
	EstRows      int64         `json:"est_rows"`
	EstBytes     int64         `json:"est_bytes"`
	RowsPerSec   float64       `json:"rows_per_sec"`
	BytesPerSec  float64       `json:"bytes_per_sec"`
	ETA          *float64      `json:"eta_s"` // null when unknown, and in the final record
	TablesDone   int           `json:"tables_done"`
	Tables       int           `json:"tables"`
	Active       []TableStatus `json:"active"`
	loading      bool
}

// TableStatus is the progress of one table in flight.
type TableStatus struct {
	Table       string   `json:"table"`
	Rows        int64    `json:"rows"`
	LoadingRows int64    `json:"loading_rows"`
	EstRows     int64    `json:"est_rows"`
	ETA         *float64 `json:"eta_s"`
}

// Status returns the current totals.
func (r *Reporter) Status() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status(false)
}

func (r *Reporter) status(final bool) Snapshot {
	now := r.now()
	el := now.Sub(r.start).Seconds()
	s := Snapshot{Event: "progress", Elapsed: el, Rows: r.rows, Bytes: r.bytes, LoadingRows: r.loadRows, LoadingBytes: r.loadBy,
		EstRows: r.estRows, EstBytes: r.estBytes, TablesDone: r.done, Tables: len(r.tables), Active: []TableStatus{}, loading: r.loading}
	if final {
		s.Event = r.outcome
		if s.Event == "" {
			s.Event = "done"
		}
	}
	rows, bytes := r.rows+r.loadRows, r.bytes+r.loadBy // received: the rate and ETA move from the first frame
	if final {
		rows, bytes = r.rows, r.bytes
	}
	if el > 0 {
		s.RowsPerSec = float64(rows) / el
		s.BytesPerSec = float64(bytes) / el
	}
	if !final {
		// Rows first: estimated bytes are often on-disk sizes, not the bytes moved.
		s.ETA = eta(rows, r.estRows, s.RowsPerSec)
		if s.ETA == nil {
			s.ETA = eta(bytes, r.estBytes, s.BytesPerSec)
		}
	}
	for _, name := range r.order {
		t := r.tables[name]
		if t.active <= 0 || !t.done.IsZero() {
			continue
		}
		ts := TableStatus{Table: t.name, Rows: t.rows, LoadingRows: t.loadRows, EstRows: t.estRows}
		if tel := now.Sub(t.started).Seconds(); tel > 0 {
			got := t.rows + t.loadRows
			ts.ETA = eta(got, t.estRows, float64(got)/tel)
		}
		s.Active = append(s.Active, ts)
	}
	sort.SliceStable(s.Active, func(i, j int) bool { return s.Active[i].EstRows > s.Active[j].EstRows })
	return s
}

// eta is the seconds left at rate to go from done to est, nil when unknown.
func eta(done, est int64, rate float64) *float64 {
	if est <= 0 || rate <= 0 {
		return nil
	}
	left := float64(est-done) / rate
	if left < 0 {
		left = 0
	}
	return &left
}

func (r *Reporter) report(final bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status(final)
	switch r.mode {
	case JSON:
		r.json(s)
	case Plain:
		fmt.Fprintln(r.w, r.tool+": "+r.stamp()+line(s))
	case lines:
		fmt.Fprint(r.w, "\r\033[K"+r.tool+": "+line(s)+"\n")
	case Auto:
		l := r.tool + ": " + line(s)
		pad := ""
		if n := r.lastLen - len(l); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		r.lastLen = len(l)
		if final {
			fmt.Fprintf(r.w, "\r%s%s\n", l, pad)
		} else {
			fmt.Fprintf(r.w, "\r%s%s", l, pad)
		}
	}
}

func (r *Reporter) json(v any) {
	b, _ := json.Marshal(v)
	r.w.Write(append(b, '\n'))
}

// line is the one-line human form of s.
func line(s Snapshot) string {
	var b strings.Builder
	running := s.Event == "progress"
	if running && s.loading {
		// A loader: what arrived, then how much of it is committed and how much is loading.
		fmt.Fprintf(&b, "%d/%d tables, %d rows received", s.TablesDone, s.Tables, s.Rows+s.LoadingRows)
	} else {
		fmt.Fprintf(&b, "%d/%d tables, %d rows", s.TablesDone, s.Tables, s.Rows)
	}
	if s.EstRows > 0 && running {
		fmt.Fprintf(&b, " of ~%d", s.EstRows)
	}
	if running && s.loading {
		fmt.Fprintf(&b, " (%d committed, %d loading)", s.Rows, s.LoadingRows)
		fmt.Fprintf(&b, ", %s, %s/s", Bytes(s.Bytes+s.LoadingBytes), Bytes(int64(s.BytesPerSec)))
	} else {
		fmt.Fprintf(&b, ", %s, %s/s", Bytes(s.Bytes), Bytes(int64(s.BytesPerSec)))
	}
	if s.ETA != nil {
		fmt.Fprintf(&b, ", eta %s", (time.Duration(*s.ETA) * time.Second).Round(time.Second))
	}
	el := (time.Duration(s.Elapsed*1000) * time.Millisecond).Round(time.Millisecond)
	switch {
	case s.Event == "done":
		fmt.Fprintf(&b, ", done in %s", el)
	case s.Event == "interrupted" || s.Event == "failed":
		fmt.Fprintf(&b, ", %s after %s", s.Event, el)
	case len(s.Active) > 0:
		b.WriteString(" [")
		for i, t := range s.Active {
			if i == 3 {
				fmt.Fprintf(&b, " +%d", len(s.Active)-3)
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(t.Table)
			if t.EstRows > 0 {
				fmt.Fprintf(&b, " %d%%", min(100, (t.Rows+t.LoadingRows)*100/t.EstRows))
			}
		}
		b.WriteString("]")
	}
	return b.String()
}

// Bytes formats n bytes with a binary unit.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= unit
		if f < unit && f > -unit || u == "TiB" {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return fmt.Sprintf("%d B", n)
}
