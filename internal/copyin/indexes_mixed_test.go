package copyin

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/stream"
)

// mixedWriter writes a test stream whose chunks carry the snapshots snap gives them, and sets
// table keys in the header, as pgcopyout does for a copy under several snapshots.
type mixedWriter struct {
	lazyWriter
	snap func(ti, c int) string
	keys map[string][]string
}

func (m *mixedWriter) WriteData(ti, c, seq int, raw, comp []byte) error {
	if m.w == nil {
		for i, tb := range (*m.h).Tables {
			(*m.h).Tables[i].Key = m.keys[tb.Name]
		}
	}
	return m.lazyWriter.WriteData(ti, c, seq, raw, comp)
}

func (m *mixedWriter) EndChunk(ti, c int, s stream.ChunkSummary) error {
	s.Snapshot = m.snap(ti, c)
	return m.lazyWriter.EndChunk(ti, c, s)
}

const mixedDDL = `
CREATE TABLE public.m (id int NOT NULL, email text);
CREATE TABLE public.k (id int NOT NULL, v text);
CREATE TABLE public.s (id int NOT NULL, code text);
`

// mixedScript: m's unique email index is not its key; k's unique index is its key (no primary key).
const mixedScript = `ALTER TABLE ONLY public.m ADD CONSTRAINT m_pkey PRIMARY KEY (id);
CREATE UNIQUE INDEX m_email ON public.m USING btree (email);
COMMENT ON INDEX public.m_email IS 'one account per address';
CREATE UNIQUE INDEX k_id ON public.k USING btree (id);
ALTER TABLE ONLY public.s ADD CONSTRAINT s_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.s ADD CONSTRAINT s_code UNIQUE (code);
`

// TestIndexesWaitWhenSnapshotsMix: m's two chunks were read under two snapshots, between which
// an address moved from row 1 to row 3000, so the target holds it twice: a state the source never
// had, which the first catch-up repairs. The unique index on it waits (a held-back line names
// the re-run), its key and the indexes of k (its unique key) and s (one snapshot) are built.
// The same stream under one snapshot fails on m_email: what the hold-back saves.
func TestIndexesWaitWhenSnapshotsMix(t *testing.T) {
	src, dst := pgtest.Source(t), pgtest.Target(t)
	src.Exec(t, mixedDDL+`
INSERT INTO public.m SELECT g, 'u' || g || '@x' FROM generate_series(1, 4000) g;
UPDATE public.m SET email = 'moved@x' WHERE id IN (1, 3000);
INSERT INTO public.k SELECT g, 'k' || g FROM generate_series(1, 3000) g;
INSERT INTO public.s SELECT g, 'c' || g FROM generate_series(1, 500) g;`)
	dst.Exec(t, mixedDDL)
	tables := []srcTable{{name: "public.m", split: "id", bounds: []int{2000}}, {name: "public.k", split: "id", bounds: []int{1500}}, {name: "public.s"}}
	build := func(snap func(ti, c int) string) []byte {
		var buf bytes.Buffer
		var h *stream.Header
		w := &mixedWriter{lazyWriter: lazyWriter{t: t, out: &buf, h: &h}, snap: snap, keys: map[string][]string{"public.k": {"id"}, "public.s": {"id"}}}
		makeStream(t, src.URL, tables, 1, "lz4", w, &h)
		return buf.Bytes()
	}
	script := writeScript(t, mixedScript)
	index := func(name string) int64 {
		return queryInt(t, dst.URL, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = '"+name+"' AND i.indisvalid")
	}

	mixed := build(func(ti, c int) string { return []string{"10:10:", "20:20:"}[c] })
	err, stderr := load(t, dst.URL, mixed, Config{Jobs: 2, Indexes: script})
	if err != nil {
		t.Fatalf("load: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "held back 2 unique index statements of "+script+" on public.m") || !strings.Contains(stderr, "--skip-existing < "+script) {
		t.Errorf("stderr lacks the held-back line:\n%s", stderr)
	}
	for name, want := range map[string]int64{"m_pkey": 1, "m_email": 0, "k_id": 1, "s_pkey": 1, "s_code": 1} {
		if got := index(name); got != want {
			t.Errorf("index %s: %d valid, want %d\n%s", name, got, want, stderr)
		}
	}
	if got := queryInt(t, dst.URL, "SELECT count(*) FROM public.m"); got != 4000 {
		t.Errorf("m holds %d rows, want 4000", got)
	}

	// Control: the same rows under one snapshot; m_email is built and fails on the duplicate.
	dst.Exec(t, `DROP TABLE public.m, public.k, public.s; DROP SCHEMA pgferry CASCADE;`+mixedDDL)
	err, stderr = load(t, dst.URL, build(func(int, int) string { return "10:10:" }), Config{Jobs: 2, Indexes: script})
	if err == nil || !strings.Contains(stderr, "m_email") {
		t.Fatalf("under one snapshot the unique index should have been built and failed: %v\n%s", err, stderr)
	}
}
