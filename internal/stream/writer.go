package stream

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// FrameWriter is what pgcopyout writes chunks to: a stream (Writer) or a directory (DirWriter).
// Its methods are safe for concurrent use; the frames of one chunk come from one goroutine, in order.
type FrameWriter interface {
	WriteData(table, chunk, seq int, raw, compressed []byte) error
	EndChunk(table, chunk int, s ChunkSummary) error
	Close() error
}

// Writer writes the framed stream: magic, header, then frames from many goroutines.
type Writer struct {
	mu    sync.Mutex
	w     io.Writer
	h     *Header
	codec Codec
	tr    *tracker
	err   error // sticky: after a write error nothing more is written
	hdr   [frameHdrLen]byte
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// NewWriter validates h and writes the magic and header to w. h.Version 0 is set to Version and
// h.Codec "" to the default codec.
func NewWriter(w io.Writer, h *Header) (*Writer, error) {
	codec, err := prepareHeader(h)
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode header: %w", err)
	}
	if len(js) > MaxHeaderSize {
		return nil, fmt.Errorf("encode header: %d bytes, over the %d limit", len(js), MaxHeaderSize)
	}
	b := make([]byte, 0, 16+len(js))
	b = append(b, magic(Version)...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(js)))
	b = binary.LittleEndian.AppendUint32(b, checksum(js))
	b = append(b, js...)
	if _, err := w.Write(b); err != nil {
		return nil, fmt.Errorf("write stream header: %w", err)
	}
	return &Writer{w: w, h: h, codec: codec, tr: newTracker(h)}, nil
}

func prepareHeader(h *Header) (Codec, error) {
	if h.Version == 0 {
		h.Version = Version
	}
	if h.Codec == "" {
		h.Codec = DefaultCodec.String()
	}
	if err := h.Validate(); err != nil {
		return Codec{}, err
	}
	return ParseCodec(h.Codec)
}

// Header returns the header written.
func (w *Writer) Header() *Header { return w.h }

// encodeData builds the frame header of a data frame, compressing raw when compressed is nil.
// It runs in the caller's goroutine, before any lock. buf, when not nil, must be put back in bufPool.
func encodeData(codec Codec, table, chunk, seq int, raw, compressed []byte) (fh frameHeader, payload []byte, buf *[]byte, err error) {
	if len(raw) == 0 {
		return fh, nil, nil, errors.New("empty data frame")
	}
	if len(raw) > MaxFrameSize {
		return fh, nil, nil, fmt.Errorf("data frame of %d bytes, over the %d limit: split it", len(raw), MaxFrameSize)
	}
	if table < 0 || chunk < 0 || seq < 0 {
		return fh, nil, nil, fmt.Errorf("negative table, chunk or sequence")
	}
	if compressed == nil && codec.Kind != CodecNone {
		buf = bufPool.Get().(*[]byte)
		compressed, err = Compress(codec, *buf, raw)
		if err != nil {
			bufPool.Put(buf)
			return fh, nil, nil, err
		}
		*buf = compressed
	}
	fh = frameHeader{Kind: KindData, Codec: codec.Kind, Table: uint32(table), Chunk: uint32(chunk), Seq: uint32(seq),
		RawLen: uint32(len(raw)), CRC: checksum(raw)}
	payload = compressed
	if codec.Kind == CodecNone || len(compressed) >= len(raw) {
		fh.Codec, payload = CodecNone, raw
	}
	fh.Len = uint32(len(payload))
	return fh, payload, buf, nil
}

// WriteData writes one data frame of chunk (an id of table's plan; table is the index in
// Header.Tables). raw is COPY text, at most MaxFrameSize bytes; frames should end on row
// boundaries but readers do not rely on it. compressed is raw compressed with the header's codec
// by the caller (see Compress), or nil to have WriteData compress it in the calling goroutine.
// seq counts the chunk's data frames from 0.
func (w *Writer) WriteData(table, chunk, seq int, raw, compressed []byte) error {
	fh, payload, buf, err := encodeData(w.codec, table, chunk, seq, raw, compressed)
	if buf != nil {
		defer bufPool.Put(buf)
	}
	if err != nil {
		return w.fail(table, chunk, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := w.tr.data(table, chunk, fh.Seq, len(raw)); err != nil {
		return w.failLocked(table, chunk, err)
	}
	return w.writeLocked(&fh, payload, table, chunk)
}

// EndChunk writes the chunk's end frame. Frames and Bytes of s may be left zero: the writer fills
// them in; Snapshot may be empty when the chunk was read under the header's Position.
func (w *Writer) EndChunk(table, chunk int, s ChunkSummary) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	var seq uint32
	if st, ok := w.tr.open[chunkKey{table, chunk}]; ok {
		seq = st.seq
	}
	if err := w.tr.end(table, chunk, seq, &s, true); err != nil {
		return w.failLocked(table, chunk, err)
	}
	js, _ := json.Marshal(&s)
	fh := frameHeader{Kind: KindChunkEnd, Table: uint32(table), Chunk: uint32(chunk), Seq: seq, RawLen: uint32(len(js)), Len: uint32(len(js)), CRC: checksum(js)}
	return w.writeLocked(&fh, js, table, chunk)
}

// Close writes the End frame with the totals; it fails if a chunk is still open or a planned,
// non-skipped chunk was never ended. It does not close the underlying writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := w.tr.finish(); err != nil {
		w.err = fmt.Errorf("close stream: %w", err)
		return w.err
	}
	js, _ := json.Marshal(&w.tr.totals)
	fh := frameHeader{Kind: KindEnd, RawLen: uint32(len(js)), Len: uint32(len(js)), CRC: checksum(js)}
	return w.writeLocked(&fh, js, -1, -1)
}

// Totals returns what has been ended so far.
func (w *Writer) Totals() Totals {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tr.totals
}

func (w *Writer) writeLocked(fh *frameHeader, payload []byte, table, chunk int) error {
	fh.put(w.hdr[:])
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		return w.failLocked(table, chunk, fmt.Errorf("write frame: %w", err))
	}
	if _, err := w.w.Write(payload); err != nil {
		return w.failLocked(table, chunk, fmt.Errorf("write frame: %w", err))
	}
	return nil
}

func (w *Writer) fail(table, chunk int, err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failLocked(table, chunk, err)
}

// failLocked makes err sticky and names the chunk.
func (w *Writer) failLocked(table, chunk int, err error) error {
	if table >= 0 {
		name, c := w.tr.where(table, chunk)
		err = fmt.Errorf("table %s chunk %d: %w", name, c, err)
	}
	if w.err == nil {
		w.err = err
	}
	return err
}
