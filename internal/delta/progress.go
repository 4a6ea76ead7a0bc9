package delta

import (
	"bytes"
	"fmt"
	"io"
	"time"
)

// stampFormat is the timestamp of each log line written to a file or a pipe.
const stampFormat = "2006-01-02 15:04:05Z"

// stampWriter starts every line written to w with a UTC timestamp, after the "pgdelta: " prefix
// when the line has one, so a log file (sync.log) tells when each thing happened.
type stampWriter struct {
	w       io.Writer
	now     func() time.Time
	midLine bool
}

// StampLines returns a writer that timestamps every line written to w.
func StampLines(w io.Writer, now func() time.Time) io.Writer {
	return &stampWriter{w: w, now: now}
}

func (s *stampWriter) Write(p []byte) (int, error) {
	var out bytes.Buffer
	for rest := p; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if !s.midLine {
			stamp := s.now().UTC().Format(stampFormat) + " "
			if after, ok := bytes.CutPrefix(line, []byte("pgdelta: ")); ok {
				out.WriteString("pgdelta: " + stamp)
				line = after
			} else {
				out.WriteString(stamp)
			}
		}
		out.Write(line)
		s.midLine = line[len(line)-1] != '\n'
	}
	if _, err := s.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// progressLog writes a line at most every interval while batches with changes are applied, so
// a follower's log shows it working: "applied N batches, M rows in the last minute; lag X s".
type progressLog struct {
	w        io.Writer
	every    time.Duration
	now      func() time.Time
	since    time.Time
	batches  int64
	rows     int64
	lastLagS float64
}

func newProgressLog(w io.Writer, every time.Duration, now func() time.Time) *progressLog {
	if every <= 0 {
		every = time.Minute
	}
	return &progressLog{w: w, every: every, now: now, since: now()}
}

// add counts an applied batch and writes the line when due.
func (p *progressLog) add(br BatchResult) {
	if p == nil || p.w == nil {
		return
	}
	now := p.now()
	if br.Rows > 0 || br.Truncates > 0 {
		p.batches++
		p.rows += br.Rows
		if !br.At.IsZero() {
			p.lastLagS = max(now.Sub(br.At).Seconds(), 0)
		}
	}
	elapsed := now.Sub(p.since)
	if p.batches == 0 || elapsed < p.every {
		return
	}
	window := "the last minute"
	if elapsed < 50*time.Second || elapsed > 90*time.Second {
		window = "the last " + elapsed.Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "pgdelta: applied %d batches, %d rows in %s; lag %.1f s\n", p.batches, p.rows, window, p.lastLagS)
	p.since, p.batches, p.rows = now, 0, 0
}
