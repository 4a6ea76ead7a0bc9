package stream

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Frame is one decoded, verified frame.
type Frame struct {
	Kind    FrameKind
	Table   int    // index in Header.Tables
	Name    string // the table's unquoted name
	Chunk   int    // chunk id of the table's plan
	Seq     int
	Data    []byte        // KindData: the uncompressed COPY text, valid until Release
	Summary *ChunkSummary // KindChunkEnd
	buf     *[]byte
	pending *pending // set while a data frame is still compressed (Reader.DeferDecode)
}

// pending is a data frame not yet decompressed and verified.
type pending struct {
	codec  CodecKind
	crc    uint32
	rawLen int
	seq    uint32
	stored *[]byte
	where  *Error // location for errors
}

// Decode decompresses and verifies a data frame returned by a Reader in DeferDecode mode; it may
// run in any goroutine and is a no-op for other frames. Data is valid only after it returns nil.
func (f *Frame) Decode() error {
	p := f.pending
	if p == nil {
		return nil
	}
	f.pending = nil
	defer dataPool.Put(p.stored)
	return f.decode(p, *p.stored)
}

// decode decompresses stored into a pooled buffer and checks the CRC-32C of the result.
func (f *Frame) decode(p *pending, stored []byte) error {
	buf := dataPool.Get().(*[]byte)
	if cap(*buf) < p.rawLen {
		*buf = make([]byte, p.rawLen)
	}
	raw, err := decompress(p.codec, *buf, stored, p.rawLen)
	if err == nil && checksum(raw) != p.crc {
		err = errors.New("checksum mismatch")
	}
	if err != nil {
		dataPool.Put(buf)
		e := *p.where
		e.Err = fmt.Errorf("%w: data frame %d: %v", ErrCorrupt, p.seq, err)
		return &e
	}
	*buf = raw
	f.Data, f.buf = raw, buf
	return nil
}

// Release gives the frame's buffers back for reuse; Data must not be used afterwards.
func (f *Frame) Release() {
	if f.buf != nil {
		dataPool.Put(f.buf)
		f.buf, f.Data = nil, nil
	}
	if f.pending != nil {
		dataPool.Put(f.pending.stored)
		f.pending = nil
	}
}

var dataPool = sync.Pool{New: func() any { return new([]byte) }}

// frameReader reads and verifies frames from r, tracking its byte offset.
type frameReader struct {
	r   *bufio.Reader
	off int64
	h   *Header
	tr  *tracker
	hb  [frameHdrLen]byte
	cmp []byte // scratch for the stored (compressed) payload

	deferDecode bool
}

// errAt wraps err with the location of the frame at off naming table index ti and chunk c.
func (fr *frameReader) errAt(off int64, ti, c int, err error) error {
	e := &Error{Chunk: -1, Offset: off, Err: err}
	if ti >= 0 && ti < len(fr.h.Tables) {
		e.Table, e.Chunk = fr.h.Tables[ti].Name, c
	}
	return e
}

// truncated reports a stream that ended early, naming an open chunk when there is one.
func (fr *frameReader) truncated(what string) error {
	ti, c, ok := fr.tr.firstOpen()
	msg := fmt.Errorf("%w: %s", ErrTruncated, what)
	if ok {
		if len(fr.tr.open) > 1 {
			msg = fmt.Errorf("%w: %s; chunks cut off: %s", ErrTruncated, what, fr.tr.openList())
		}
		return fr.errAt(fr.off, ti, c, msg)
	}
	return fr.errAt(fr.off, -1, -1, msg)
}

// next reads one frame. At a clean end of input before any byte of a frame it returns io.EOF.
func (fr *frameReader) next() (*Frame, error) {
	start := fr.off
	n, err := io.ReadFull(fr.r, fr.hb[:])
	fr.off += int64(n)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fr.truncated("input ends inside a frame header")
		}
		return nil, fr.errAt(start, -1, -1, fmt.Errorf("read stream: %w", err))
	}
	var fh frameHeader
	if err := fh.parse(fr.hb[:]); err != nil {
		return nil, fr.headerError(start, err)
	}
	ti, c := int(fh.Table), int(fh.Chunk)
	if fh.Kind == KindEnd {
		ti, c = -1, -1
	}
	if cap(fr.cmp) < int(fh.Len) {
		fr.cmp = make([]byte, fh.Len)
	}
	stored := fr.cmp[:fh.Len]
	n, err = io.ReadFull(fr.r, stored)
	fr.off += int64(n)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
			e := fmt.Errorf("%w: input ends inside a %s frame", ErrTruncated, fh.Kind)
			return nil, fr.errAt(start, ti, c, e)
		}
		return nil, fr.errAt(start, ti, c, fmt.Errorf("read stream: %w", err))
	}
	f := &Frame{Kind: fh.Kind, Table: ti, Chunk: c, Seq: int(fh.Seq)}
	if ti >= 0 && ti < len(fr.h.Tables) {
		f.Name = fr.h.Tables[ti].Name
	}
	switch fh.Kind {
	case KindData:
		if err := fr.tr.data(ti, c, fh.Seq, int(fh.RawLen)); err != nil {
			return nil, fr.errAt(start, ti, c, fmt.Errorf("%w: %v", ErrCorrupt, err))
		}
		p := &pending{codec: fh.Codec, crc: fh.CRC, rawLen: int(fh.RawLen), seq: fh.Seq, where: fr.errAt(start, ti, c, nil).(*Error)}
		if fr.deferDecode {
			p.stored = dataPool.Get().(*[]byte)
			*p.stored = append((*p.stored)[:0], stored...)
			f.pending = p
			return f, nil
		}
		if err := f.decode(p, stored); err != nil {
			return nil, err
		}
	case KindChunkEnd, KindEnd:
		if fh.RawLen != fh.Len || checksum(stored) != fh.CRC {
			return nil, fr.errAt(start, ti, c, fmt.Errorf("%w: %s frame checksum mismatch", ErrCorrupt, fh.Kind))
		}
		if fh.Kind == KindEnd {
			if err := fr.endFrame(start, &fh, stored); err != nil {
				return nil, err
			}
			return f, nil
		}
		if err := fr.chunkEndFrame(start, &fh, stored, f); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// headerError is the error for a damaged frame header: its table and chunk cannot be trusted,
// so it names the chunk of a chunk file, or the one open chunk of a stream, or lists the open ones.
func (fr *frameReader) headerError(start int64, err error) error {
	if k := fr.tr.only; k != nil {
		return fr.errAt(start, k.table, k.chunk, err)
	}
	ti, c, _ := fr.tr.firstOpen()
	if len(fr.tr.open) == 1 {
		return fr.errAt(start, ti, c, err)
	}
	if len(fr.tr.open) > 1 {
		return fr.errAt(start, -1, -1, fmt.Errorf("%w; chunks in flight: %s", err, fr.tr.openList()))
	}
	return fr.errAt(start, -1, -1, err)
}

// endFrame checks the end frame: it names no chunk, every chunk has ended, and its totals are
// those of the stream.
func (fr *frameReader) endFrame(start int64, fh *frameHeader, stored []byte) error {
	var t Totals
	if err := strictJSON(stored, &t); err != nil {
		return fr.errAt(start, -1, -1, fmt.Errorf("%w: end frame: %v", ErrCorrupt, err))
	}
	if fh.Table != 0 || fh.Chunk != 0 || fh.Seq != 0 {
		return fr.errAt(start, -1, -1, fmt.Errorf("%w: end frame names a chunk", ErrCorrupt))
	}
	if err := fr.tr.finish(); err != nil {
		return fr.errAt(start, -1, -1, fmt.Errorf("%w: %v", ErrCorrupt, err))
	}
	if t != fr.tr.totals {
		return fr.errAt(start, -1, -1, fmt.Errorf("%w: end frame totals %+v, stream held %+v", ErrCorrupt, t, fr.tr.totals))
	}
	return nil
}

// chunkEndFrame reads a chunk's end frame into f.Summary and closes the chunk.
func (fr *frameReader) chunkEndFrame(start int64, fh *frameHeader, stored []byte, f *Frame) error {
	ti, c := int(fh.Table), int(fh.Chunk)
	var s ChunkSummary
	if err := strictJSON(stored, &s); err != nil {
		return fr.errAt(start, ti, c, fmt.Errorf("%w: chunk end frame: %v", ErrCorrupt, err))
	}
	if err := fr.tr.end(ti, c, fh.Seq, &s, false); err != nil {
		return fr.errAt(start, ti, c, fmt.Errorf("%w: %v", ErrCorrupt, err))
	}
	f.Summary = &s
	return nil
}

func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytesReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data after JSON")
	}
	return nil
}

// Reader reads the framed stream, verifying every frame and the stream's completeness.
type Reader struct {
	fr    frameReader
	ended bool
}

// NewReader reads and validates the magic and header.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	h, n, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	return &Reader{fr: frameReader{r: br, off: n, h: h, tr: newTracker(h)}}, nil
}

// readHeader reads magic, length, checksum and JSON header; n is the bytes consumed.
func readHeader(br *bufio.Reader) (*Header, int64, error) {
	var pre [16]byte
	n, err := io.ReadFull(br, pre[:8])
	if err != nil {
		if n == 0 {
			return nil, 0, &Error{Chunk: -1, Err: fmt.Errorf("%w: empty input", ErrTruncated)}
		}
		return nil, int64(n), &Error{Chunk: -1, Err: fmt.Errorf("%w: input ends inside the magic", ErrTruncated)}
	}
	if err := checkMagic(pre[:8]); err != nil {
		return nil, 0, &Error{Chunk: -1, Err: err}
	}
	if _, err := io.ReadFull(br, pre[8:16]); err != nil {
		return nil, 8, &Error{Chunk: -1, Offset: 8, Err: fmt.Errorf("%w: input ends inside the header", ErrTruncated)}
	}
	size := binary.LittleEndian.Uint32(pre[8:])
	sum := binary.LittleEndian.Uint32(pre[12:])
	if size > MaxHeaderSize {
		return nil, 16, &Error{Chunk: -1, Offset: 8, Err: fmt.Errorf("%w: header of %d bytes over the %d limit", ErrCorrupt, size, MaxHeaderSize)}
	}
	js := make([]byte, 0, min(size, 1<<20))
	js, err = readN(br, js, int(size))
	if err != nil {
		return nil, 16, &Error{Chunk: -1, Offset: 16, Err: fmt.Errorf("%w: input ends inside the header", ErrTruncated)}
	}
	if checksum(js) != sum {
		return nil, 16, &Error{Chunk: -1, Offset: 16, Err: fmt.Errorf("%w: header checksum mismatch", ErrCorrupt)}
	}
	h, err := parseHeader(js)
	if err != nil {
		return nil, 16, &Error{Chunk: -1, Offset: 16, Err: err}
	}
	return h, 16 + int64(size), nil
}

// readN reads exactly n bytes, growing buf as data arrives (so a lying length cannot allocate it all up front).
func readN(r io.Reader, buf []byte, n int) ([]byte, error) {
	for len(buf) < n {
		want := min(n-len(buf), 1<<20)
		start := len(buf)
		buf = append(buf, make([]byte, want)...)
		if _, err := io.ReadFull(r, buf[start:]); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func parseHeader(js []byte) (*Header, error) {
	var h Header
	if err := strictJSON(js, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return &h, nil
}

// Header returns the stream's header.
func (r *Reader) Header() *Header { return r.fr.h }

// Next returns the next data or chunk-end frame, verified and decompressed. It returns io.EOF only
// after a valid End frame (all planned chunks ended, totals matching, no trailing bytes); any other
// problem is an *Error naming the table and chunk where known, matching ErrCorrupt or ErrTruncated.
func (r *Reader) Next() (*Frame, error) {
	if r.ended {
		return nil, io.EOF
	}
	f, err := r.fr.next()
	if err == io.EOF {
		return nil, r.fr.truncated("input ends without the end frame")
	}
	if err != nil {
		return nil, err
	}
	if f.Kind == KindEnd {
		if _, err := r.fr.r.ReadByte(); err != io.EOF {
			return nil, r.fr.errAt(r.fr.off, -1, -1, fmt.Errorf("%w: bytes after the end frame", ErrCorrupt))
		}
		r.ended = true
		return nil, io.EOF
	}
	return f, nil
}

// DeferDecode makes Next return data frames still compressed, so that the caller decompresses
// and verifies them in parallel: call Frame.Decode before using Data. Framing, sequence and
// completeness are still checked by Next; a frame's checksum is checked by Decode.
func (r *Reader) DeferDecode() { r.fr.deferDecode = true }

// Totals returns what the stream held so far (all of it once Next returned io.EOF).
func (r *Reader) Totals() Totals { return r.fr.tr.totals }

// Offset returns the bytes consumed so far.
func (r *Reader) Offset() int64 { return r.fr.off }
