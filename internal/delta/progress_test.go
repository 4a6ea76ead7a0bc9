package delta

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgferry/pgferry/internal/dbconn"
	"github.com/pgferry/pgferry/internal/pgtest"
)

func TestStampLines(t *testing.T) {
	var b bytes.Buffer
	w := StampLines(&b, func() time.Time { return time.Date(2026, 12, 1, 15, 4, 5, 0, time.UTC) })
	for _, s := range []string{"pgdelta: one\nfrag", "ment\n", "other\npgdelta: three\n"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	want := "pgdelta: 2026-12-01 15:04:05Z one\n2026-12-01 15:04:05Z fragment\n2026-12-01 15:04:05Z other\npgdelta: 2026-12-01 15:04:05Z three\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}

func TestProgressLog(t *testing.T) {
	var b bytes.Buffer
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	p := newProgressLog(&b, 0, func() time.Time { return now })
	step := func(d time.Duration, rows int64) {
		now = now.Add(d)
		p.add(BatchResult{Rows: rows, At: now.Add(-2 * time.Second), Emitted: true})
	}
	step(30*time.Second, 5)
	step(20*time.Second, 7)
	if b.Len() != 0 {
		t.Fatalf("logged before a minute passed: %q", b.String())
	}
	step(15*time.Second, 0) // a heartbeat: not counted, but the minute is up
	if got, want := b.String(), "pgdelta: applied 2 batches, 12 rows in the last minute; lag 2.0 s\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	b.Reset()
	step(2*time.Minute, 0) // idle: nothing applied, nothing logged
	if b.Len() != 0 {
		t.Fatalf("logged while idle: %q", b.String())
	}
}

// TestSyncFollowProgress follows a source that changes and checks the follower's log shows it.
func TestSyncFollowProgress(t *testing.T) {
	src := pgtest.Source(t)
	dst := pgtest.Target(t)
	src.Exec(t, "CREATE TABLE public.p(id int PRIMARY KEY)")
	dst.Exec(t, "CREATE TABLE public.p(id int PRIMARY KEY)")
	installCapture(t, src.URL)
	snapshotCopy(t, src.URL, dst.URL, []string{"public.p"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	w := connect(t, src.URL)
	done := make(chan struct{})
	go func() { // inserts until the sync stops; errors after the deadline do not matter
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			w.Exec(ctx, "INSERT INTO public.p VALUES ($1)", i)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() { <-done }()
	var log bytes.Buffer
	_, err := Sync(ctx, SyncOptions{
		ConnectSource: func(ctx context.Context) (*pgx.Conn, error) {
			return dbconn.Connect(ctx, src.URL, dbconn.Source, dbconn.Options{})
		},
		ConnectTarget: func(ctx context.Context) (*pgx.Conn, error) {
			return dbconn.Connect(ctx, dst.URL, dbconn.Target, dbconn.Options{})
		},
		CaptureSchema: "pgferry", StateSchema: "pgferry", PruneEvery: -1,
		Follow: FollowOptions{Follow: true}, Log: &log, ProgressEvery: 500 * time.Millisecond,
	})
	if ctx.Err() == nil {
		t.Fatalf("sync stopped early: %v", err)
	}
	re := regexp.MustCompile(`(?m)^pgdelta: applied [1-9]\d* batches, [1-9]\d* rows in the last \S+; lag \d+\.\d s$`)
	if n := len(re.FindAllString(log.String(), -1)); n < 2 {
		t.Fatalf("want progress lines every 500ms, got %d in:\n%s", n, log.String())
	}
}
