package stream

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Directory form: DIR/header.json (the Header), DIR/tTTTT-cCCCCCC.chunk per loaded chunk (magic,
// then the chunk's data frames and its chunk-end frame), and DIR/end.json (Totals), written last.

const (
	dirHeader = "header.json"
	dirEnd    = "end.json"
)

// ChunkFile is the file name of chunk id c of table index ti in the directory form.
func ChunkFile(ti, c int) string { return fmt.Sprintf("t%05d-c%07d.chunk", ti, c) }

// DirWriter writes the directory form. Chunk files appear (renamed from .tmp) only once complete.
type DirWriter struct {
	dir   string
	h     *Header
	codec Codec
	mu    sync.Mutex
	tr    *tracker
	files map[chunkKey]*os.File
	err   error
}

// NewDirWriter creates dir and writes header.json. A dir holding the unfinished dump of an
// interrupted run of the same dump (ResumeDir) is resumed: h must then skip the chunks whose
// files are there (pgcopyout plans so from ReadUnfinishedDir), and the header written lists them
// as present again.
func NewDirWriter(dir string, h *Header) (*DirWriter, error) {
	codec, err := prepareHeader(h)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create directory: %w", err)
	}
	st, err := ReadUnfinishedDir(dir)
	if err != nil {
		return nil, err
	}
	onDisk := h
	if st != nil {
		if onDisk, err = resumeDir(dir, st, h); err != nil {
			return nil, err
		}
	}
	js, err := json.MarshalIndent(onDisk, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encode header: %w", err)
	}
	if err := writeFileSync(filepath.Join(dir, dirHeader), js); err != nil {
		return nil, err
	}
	return &DirWriter{dir: dir, h: h, codec: codec, tr: newTracker(h), files: map[chunkKey]*os.File{}}, nil
}

func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// file returns the open .tmp file of a chunk, creating it with the magic.
func (d *DirWriter) file(k chunkKey) (*os.File, error) {
	if f, ok := d.files[k]; ok {
		return f, nil
	}
	f, err := os.Create(filepath.Join(d.dir, ChunkFile(k.table, k.chunk)+".tmp"))
	if err != nil {
		return nil, fmt.Errorf("create chunk file: %w", err)
	}
	if _, err := f.Write(magic(Version)); err != nil {
		f.Close()
		return nil, fmt.Errorf("write chunk file: %w", err)
	}
	d.files[k] = f
	return f, nil
}

// WriteData writes a data frame to the chunk's file; see Writer.WriteData.
func (d *DirWriter) WriteData(table, chunk, seq int, raw, compressed []byte) error {
	fh, payload, buf, err := encodeData(d.codec, table, chunk, seq, raw, compressed)
	if buf != nil {
		defer bufPool.Put(buf)
	}
	d.mu.Lock()
	if err == nil {
		err = d.err
	}
	var f *os.File
	if err == nil {
		err = d.tr.data(table, chunk, fh.Seq, len(raw))
	}
	if err == nil {
		f, err = d.file(chunkKey{table, chunk})
	}
	d.mu.Unlock()
	if err != nil {
		return d.named(table, chunk, err)
	}
	// The frames of one chunk come from one goroutine: its file needs no lock.
	var hb [frameHdrLen]byte
	fh.put(hb[:])
	if _, err := f.Write(hb[:]); err != nil {
		return d.named(table, chunk, fmt.Errorf("write chunk file: %w", err))
	}
	if _, err := f.Write(payload); err != nil {
		return d.named(table, chunk, fmt.Errorf("write chunk file: %w", err))
	}
	return nil
}

func (d *DirWriter) named(table, chunk int, err error) error {
	name, c := d.tr.where(table, chunk)
	return fmt.Errorf("table %s chunk %d: %w", name, c, err)
}

// EndChunk writes the chunk-end frame, syncs the chunk file and renames it into place.
func (d *DirWriter) EndChunk(table, chunk int, s ChunkSummary) error {
	k := chunkKey{table, chunk}
	d.mu.Lock()
	err := d.err
	var seq uint32
	if st, ok := d.tr.open[k]; ok {
		seq = st.seq
	}
	var f *os.File
	if err == nil {
		err = d.tr.end(table, chunk, seq, &s, true)
	}
	if err == nil {
		f, err = d.file(k)
		delete(d.files, k)
	}
	d.mu.Unlock()
	if err != nil {
		return d.named(table, chunk, err)
	}
	js, _ := json.Marshal(&s)
	fh := frameHeader{Kind: KindChunkEnd, Table: uint32(table), Chunk: uint32(chunk), Seq: seq, RawLen: uint32(len(js)), Len: uint32(len(js)), CRC: checksum(js)}
	var hb [frameHdrLen]byte
	fh.put(hb[:])
	_, err = f.Write(append(hb[:], js...))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(d.dir, ChunkFile(table, chunk)))
	}
	if err != nil {
		return d.named(table, chunk, fmt.Errorf("write chunk file: %w", err))
	}
	return nil
}

// Close checks every planned chunk was ended and writes end.json.
func (d *DirWriter) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.tr.finish(); err != nil {
		for _, f := range d.files {
			f.Close()
		}
		return fmt.Errorf("close stream directory: %w", err)
	}
	js, _ := json.Marshal(&d.tr.totals)
	return writeFileSync(filepath.Join(d.dir, dirEnd), js)
}

// Dir is a stream directory opened for reading.
type Dir struct {
	Path   string
	h      *Header
	Totals Totals
}

// DirChunk names one chunk present in a directory.
type DirChunk struct {
	Table int // index in Header.Tables
	Name  string
	Chunk int
}

// OpenDir reads and validates header.json and end.json; it fails if the directory is incomplete.
func OpenDir(dir string) (*Dir, error) {
	js, err := os.ReadFile(filepath.Join(dir, dirHeader))
	if err != nil {
		return nil, fmt.Errorf("open stream directory: %w", err)
	}
	h, err := parseHeader(js)
	if err != nil {
		return nil, fmt.Errorf("open stream directory %s: %w", dir, err)
	}
	d := &Dir{Path: dir, h: h}
	end, err := os.ReadFile(filepath.Join(dir, dirEnd))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open stream directory %s: %w: no %s, pgcopyout did not finish writing it", dir, ErrTruncated, dirEnd)
		}
		return nil, fmt.Errorf("open stream directory: %w", err)
	}
	if err := strictJSON(end, &d.Totals); err != nil {
		return nil, fmt.Errorf("open stream directory %s: %w: %s: %v", dir, ErrCorrupt, dirEnd, err)
	}
	for _, c := range d.Chunks() {
		if _, err := os.Stat(filepath.Join(dir, ChunkFile(c.Table, c.Chunk))); err != nil {
			return nil, &Error{Table: c.Name, Chunk: c.Chunk, Err: fmt.Errorf("%w: chunk file %s missing", ErrTruncated, ChunkFile(c.Table, c.Chunk))}
		}
	}
	return d, nil
}

// Header returns the directory's header.
func (d *Dir) Header() *Header { return d.h }

// Chunks lists the chunks the directory holds (every planned chunk not marked skip), in plan order.
func (d *Dir) Chunks() []DirChunk {
	var out []DirChunk
	for ti, t := range d.h.Tables {
		for _, c := range t.Chunks {
			if !c.Skip {
				out = append(out, DirChunk{Table: ti, Name: t.Name, Chunk: c.ID})
			}
		}
	}
	return out
}

// ChunkReader reads one chunk file.
type ChunkReader struct {
	f     *os.File
	fr    frameReader
	ended bool
}

// Open opens the file of chunk id c of table index ti.
func (d *Dir) Open(ti, c int) (*ChunkReader, error) {
	if d.h.Chunk(ti, c) == nil {
		return nil, fmt.Errorf("open chunk: table index %d chunk %d not in the plan", ti, c)
	}
	name := d.h.Tables[ti].Name
	f, err := os.Open(filepath.Join(d.Path, ChunkFile(ti, c)))
	if err != nil {
		return nil, &Error{Table: name, Chunk: c, Err: fmt.Errorf("open chunk file: %w", err)}
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var m [8]byte
	if _, err := io.ReadFull(br, m[:]); err != nil {
		f.Close()
		return nil, &Error{Table: name, Chunk: c, Err: fmt.Errorf("%w: chunk file shorter than its magic", ErrTruncated)}
	}
	if err := checkMagic(m[:]); err != nil {
		f.Close()
		return nil, &Error{Table: name, Chunk: c, Err: err}
	}
	tr := newTracker(d.h)
	tr.only = &chunkKey{ti, c}
	return &ChunkReader{f: f, fr: frameReader{r: br, off: 8, h: d.h, tr: tr}}, nil
}

// Next returns the chunk's data frames, then its chunk-end frame, then io.EOF.
func (cr *ChunkReader) Next() (*Frame, error) {
	if cr.ended {
		if _, err := cr.fr.r.ReadByte(); err != io.EOF {
			k := *cr.fr.tr.only
			return nil, cr.fr.errAt(cr.fr.off, k.table, k.chunk, fmt.Errorf("%w: bytes after the chunk end frame", ErrCorrupt))
		}
		return nil, io.EOF
	}
	f, err := cr.fr.next()
	if err == io.EOF {
		k := *cr.fr.tr.only
		return nil, cr.fr.errAt(cr.fr.off, k.table, k.chunk, fmt.Errorf("%w: chunk file ends without its chunk end frame", ErrTruncated))
	}
	if err != nil {
		return nil, err
	}
	if f.Kind == KindEnd {
		return nil, cr.fr.errAt(cr.fr.off, -1, -1, fmt.Errorf("%w: end frame inside a chunk file", ErrCorrupt))
	}
	if f.Kind == KindChunkEnd {
		cr.ended = true
	}
	return f, nil
}

// Close closes the file.
func (cr *ChunkReader) Close() error { return cr.f.Close() }
