package progress

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"auto": Auto, "PLAIN": Plain, "json": JSON, "none": None, "": Auto} {
		got, err := ParseMode(in)
		if err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseMode("fancy"); err == nil || !strings.Contains(err.Error(), "auto, plain, json or none") {
		t.Errorf("ParseMode(fancy) err = %v", err)
	}
	var buf bytes.Buffer
	if m := Auto.Resolve(&buf); m != Plain {
		t.Errorf("auto into a file or pipe resolved to %q, want plain (lines and a summary)", m)
	}
}

func TestJSONReports(t *testing.T) {
	var buf syncBuf
	r := New(&buf, JSON, "pgtest")
	clock := time.Unix(1000, 0)
	r.now = func() time.Time { return clock }
	r.SetInterval(time.Hour)
	r.AddTable("public.a", 100, 1000)
	r.AddTable("public.b", 300, 3000)
	r.Start()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Begin("public.b")
			r.Add("public.b", 50, 500)
			r.End("public.b")
		}()
	}
	wg.Wait()
	clock = clock.Add(2 * time.Second)
	s := r.Status()
	if s.Rows != 200 || s.Bytes != 2000 || s.EstRows != 400 || s.RowsPerSec != 100 {
		t.Fatalf("status = %+v", s)
	}
	if s.ETA == nil || *s.ETA != 2 { // 200 of 400 rows at 100 rows/s
		t.Fatalf("eta = %v, want 2", s.ETA)
	}
	r.Undo("public.b", 50, 500)
	r.Add("public.b", 150, 1500)
	r.TableDone("public.b")
	r.TableDone("public.b") // idempotent
	r.Stop()
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	var events []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not json: %q", sc.Text())
		}
		events = append(events, m)
	}
	if len(events) != 2 || events[0]["event"] != "table_done" || events[0]["rows"].(float64) != 300 {
		t.Fatalf("events = %v", events)
	}
	if last := events[1]; last["event"] != "done" || last["rows"].(float64) != 300 || last["tables_done"].(float64) != 1 || last["tables"].(float64) != 2 {
		t.Fatalf("final = %v", last)
	}
}

func TestPlainAndBytes(t *testing.T) {
	var buf syncBuf
	r := New(&buf, Plain, "pgx")
	r.AddTable("s.t", 10, 0)
	r.Start()
	r.Add("s.t", 10, 2048)
	r.TableDone("s.t")
	r.Stop()
	out := buf.String()
	stamp := `\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ `
	if !regexp.MustCompile(`(?m)^pgx: `+stamp+`s\.t done: 10 rows, 2\.0 KiB`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^pgx: `+stamp+`1/1 tables, 10 rows, .*, done in `).MatchString(out) {
		t.Fatalf("plain output:\n%s", out)
	}
	if got := Bytes(1536 * 1024 * 1024); got != "1.5 GiB" {
		t.Errorf("Bytes = %q", got)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestFinishSaysHowItEnded: an interrupted or failed run never reports "done".
func TestFinishSaysHowItEnded(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{{fmt.Errorf("load: %w", context.Canceled), "interrupted after"}, {errors.New("boom"), "failed after"}, {nil, "done in"}} {
		var buf syncBuf
		r := New(&buf, Plain, "pgx")
		r.AddTable("s.t", 10, 0)
		r.Start()
		r.Add("s.t", 4, 100)
		r.Finish(c.err)
		out := buf.String()
		if !strings.Contains(out, "4 rows, ") || !strings.Contains(out, c.want) || c.err != nil && strings.Contains(out, "done") {
			t.Errorf("finish(%v):\n%s", c.err, out)
		}
	}
}

// TestPipelineLines: on a terminal shared with a pipeline each report is a whole labelled line
// that first clears the line pv may be drawing; alone on a terminal the line is redrawn in place.
func TestPipelineLines(t *testing.T) {
	var buf syncBuf
	r := &Reporter{w: &buf, mode: lines, tool: "pgcopyin", interval: time.Hour, now: time.Now, tables: map[string]*table{}}
	r.AddTable("s.t", 10, 0)
	r.Start()
	r.Add("s.t", 5, 100)
	r.report(false)
	r.Stop()
	out := buf.String()
	if !strings.HasPrefix(out, "\r\033[Kpgcopyin: 0/1 tables, 5 rows of ~10") || strings.Count(out, "\n") != 2 {
		t.Errorf("pipeline lines: %q", out)
	}
	buf = syncBuf{}
	r = &Reporter{w: &buf, mode: Auto, tool: "pgcopyout", interval: time.Hour, now: time.Now, tables: map[string]*table{}}
	r.Start()
	r.report(false)
	r.Stop()
	if out := buf.String(); !strings.HasPrefix(out, "\rpgcopyout: ") || strings.Count(out, "\n") != 1 {
		t.Errorf("redrawn line: %q", out)
	}
}
