package copyout

import (
	"context"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pgferry/pgferry/internal/pgtest"
	"github.com/pgferry/pgferry/internal/stream"
)

func TestDirectoryForm(t *testing.T) {
	db := pgtest.Source(t)
	db.Exec(t, fixture(db))
	cfg := baseConfig(db.URL)
	cfg.OneOff, cfg.Codec = true, "zstd"
	cfg.OutDir = filepath.Join(t.TempDir(), "copy")
	if err := Run(context.Background(), cfg, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	d, err := stream.OpenDir(cfg.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, c := range d.Chunks() {
		cr, err := d.Open(c.Table, c.Chunk)
		if err != nil {
			t.Fatal(err)
		}
		for {
			f, err := cr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s chunk %d: %v", c.Name, c.Chunk, err)
			}
			if f.Kind == stream.KindData {
				rows[c.Name] = append(rows[c.Name], strings.Split(strings.TrimSuffix(string(f.Data), "\n"), "\n")...)
			}
			f.Release()
		}
		cr.Close()
	}
	conn := connect(t, db.URL)
	if len(d.Header().Tables) != len(fixtureTables) {
		t.Fatalf("%d tables", len(d.Header().Tables))
	}
	for _, tb := range d.Header().Tables {
		got := rows[tb.Name]
		sort.Strings(got)
		if strings.Join(got, "\n") != strings.Join(sourceRows(t, conn, tb.Name, tb.Columns), "\n") {
			t.Errorf("%s: directory holds %d rows, different from the source", tb.Name, len(got))
		}
	}
}
