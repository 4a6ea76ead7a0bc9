package stream

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// CodecKind names a compression algorithm; its value is the frame's codec byte.
type CodecKind uint8

// The codecs. A frame whose data does not shrink is stored with CodecNone whatever the stream's codec.
const (
	CodecNone CodecKind = 0
	CodecLZ4  CodecKind = 1
	CodecZstd CodecKind = 2
	CodecGzip CodecKind = 3
)

// Codec is a compression algorithm with its level (0 = the algorithm's default).
type Codec struct {
	Kind  CodecKind
	Level int
}

// DefaultCodec is lz4: fast enough never to be the bottleneck of a COPY.
var DefaultCodec = Codec{Kind: CodecLZ4}

// String returns the codec as ParseCodec reads it: "lz4", "zstd", "zstd:9", "gzip:6", "none".
func (c Codec) String() string {
	var s string
	switch c.Kind {
	case CodecNone:
		return "none"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		s = "zstd"
	case CodecGzip:
		s = "gzip"
	default:
		return fmt.Sprintf("codec(%d)", c.Kind)
	}
	if c.Level != 0 {
		s += ":" + strconv.Itoa(c.Level)
	}
	return s
}

// ParseCodec reads "lz4", "zstd[:1..22]", "gzip[:1..9]" or "none".
func ParseCodec(s string) (Codec, error) {
	name, lvl, hasLevel := strings.Cut(strings.ToLower(strings.TrimSpace(s)), ":")
	var c Codec
	switch name {
	case "none":
		c.Kind = CodecNone
	case "lz4", "":
		c.Kind = CodecLZ4
	case "zstd":
		c.Kind = CodecZstd
	case "gzip":
		c.Kind = CodecGzip
	default:
		return c, fmt.Errorf("unknown codec %q: want lz4, zstd[:level], gzip[:level] or none", s)
	}
	if hasLevel {
		n, err := strconv.Atoi(lvl)
		if err != nil {
			return c, fmt.Errorf("bad codec level in %q: %w", s, err)
		}
		switch {
		case c.Kind == CodecZstd && (n < 1 || n > 22):
			return c, fmt.Errorf("bad codec level in %q: zstd levels are 1..22", s)
		case c.Kind == CodecGzip && (n < 1 || n > 9):
			return c, fmt.Errorf("bad codec level in %q: gzip levels are 1..9", s)
		case c.Kind == CodecLZ4 || c.Kind == CodecNone:
			return c, fmt.Errorf("bad codec %q: %s takes no level", s, name)
		}
		c.Level = n
	}
	return c, nil
}

var (
	lz4Pool  = sync.Pool{New: func() any { return new(lz4.Compressor) }}
	zstdEncs sync.Map // level -> *sync.Pool of *zstd.Encoder
	gzipEncs sync.Map // level -> *sync.Pool of *gzip.Writer
	zstdDec  = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxFrameSize*2))
		if err != nil {
			panic(err) // only bad options fail
		}
		return d
	}}
)

func zstdPool(level int) *sync.Pool {
	if p, ok := zstdEncs.Load(level); ok {
		return p.(*sync.Pool)
	}
	p, _ := zstdEncs.LoadOrStore(level, &sync.Pool{New: func() any {
		opts := []zstd.EOption{zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true)}
		if level != 0 {
			opts = append(opts, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
		}
		e, err := zstd.NewWriter(nil, opts...)
		if err != nil {
			panic(err)
		}
		return e
	}})
	return p.(*sync.Pool)
}

func gzipPool(level int) *sync.Pool {
	if p, ok := gzipEncs.Load(level); ok {
		return p.(*sync.Pool)
	}
	p, _ := gzipEncs.LoadOrStore(level, &sync.Pool{New: func() any {
		l := level
		if l == 0 {
			l = gzip.DefaultCompression
		}
		w, err := gzip.NewWriterLevel(nil, l)
		if err != nil {
			panic(err)
		}
		return w
	}})
	return p.(*sync.Pool)
}

// Compress appends src compressed with codec to dst[:0] and returns it. It is safe to call from
// many goroutines at once (workers compress their own frames). The result may be no smaller than
// src; WriteData then stores the frame uncompressed.
func Compress(codec Codec, dst, src []byte) ([]byte, error) {
	dst = dst[:0]
	switch codec.Kind {
	case CodecNone:
		return append(dst, src...), nil
	case CodecLZ4:
		bound := lz4.CompressBlockBound(len(src))
		if cap(dst) < bound {
			dst = make([]byte, bound)
		}
		dst = dst[:bound]
		c := lz4Pool.Get().(*lz4.Compressor)
		n, err := c.CompressBlock(src, dst)
		lz4Pool.Put(c)
		if err != nil {
			return nil, fmt.Errorf("compress lz4: %w", err)
		}
		if n == 0 { // incompressible: lz4 signals it with 0
			return append(dst[:0], src...), nil
		}
		return dst[:n], nil
	case CodecZstd:
		p := zstdPool(codec.Level)
		e := p.Get().(*zstd.Encoder)
		dst = e.EncodeAll(src, dst)
		p.Put(e)
		return dst, nil
	case CodecGzip:
		p := gzipPool(codec.Level)
		w := p.Get().(*gzip.Writer)
		buf := bytes.NewBuffer(dst)
		w.Reset(buf)
		_, err := w.Write(src)
		if err == nil {
			err = w.Close()
		}
		p.Put(w)
		if err != nil {
			return nil, fmt.Errorf("compress gzip: %w", err)
		}
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("compress: unknown codec %d", codec.Kind)
}

// decompress decodes src, compressed with kind, into dst[:rawLen], which must have that capacity.
func decompress(kind CodecKind, dst, src []byte, rawLen int) ([]byte, error) {
	dst = dst[:rawLen]
	switch kind {
	case CodecNone:
		if len(src) != rawLen {
			return nil, fmt.Errorf("stored frame holds %d bytes, header says %d", len(src), rawLen)
		}
		copy(dst, src)
		return dst, nil
	case CodecLZ4:
		n, err := lz4.UncompressBlock(src, dst)
		if err != nil {
			return nil, fmt.Errorf("decompress lz4: %w", err)
		}
		if n != rawLen {
			return nil, fmt.Errorf("decompress lz4: got %d bytes, header says %d", n, rawLen)
		}
		return dst, nil
	case CodecZstd:
		d := zstdDec.Get().(*zstd.Decoder)
		out, err := d.DecodeAll(src, dst[:0])
		zstdDec.Put(d)
		if err != nil {
			return nil, fmt.Errorf("decompress zstd: %w", err)
		}
		if len(out) != rawLen {
			return nil, fmt.Errorf("decompress zstd: got %d bytes, header says %d", len(out), rawLen)
		}
		return out, nil
	case CodecGzip:
		zr, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("decompress gzip: %w", err)
		}
		n, err := io.ReadFull(zr, dst)
		if err != nil {
			return nil, fmt.Errorf("decompress gzip: got %d bytes, header says %d: %w", n, rawLen, err)
		}
		var one [1]byte
		if m, _ := zr.Read(one[:]); m != 0 {
			return nil, fmt.Errorf("decompress gzip: more than the %d bytes the header says", rawLen)
		}
		return dst, nil
	}
	return nil, fmt.Errorf("unknown codec byte %d", kind)
}
