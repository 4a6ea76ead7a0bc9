package deltarec

import (
	"bufio"
	"io"
	"strconv"
	"unicode/utf8"
)

// OpFlush marks a point inside an oversized batch where apply may commit the work so far
// without moving its position (see docs/delta-format.md).
const OpFlush = "flush"

// Writer writes delta records as JSON lines without reflection; columns keep the order given.
type Writer struct {
	w   *bufio.Writer
	buf []byte
	// Source, when set, is written into every begin record as "source": the identity of the
	// database the changes come from (dbconn.Identity.Token).
	Source string
}

// NewWriter returns a Writer buffering onto w; call Flush to push buffered lines out.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 256<<10)}
}

// Begin writes {"op":"begin","from":..,"to":..,"at":..}; at may be empty.
func (w *Writer) Begin(from, to, at string) error {
	b := append(w.buf[:0], `{"op":"begin","from":`...)
	b = AppendString(b, from)
	b = append(b, `,"to":`...)
	b = AppendString(b, to)
	if at != "" {
		b = append(b, `,"at":`...)
		b = AppendString(b, at)
	}
	if w.Source != "" {
		b = append(b, `,"source":`...)
		b = AppendString(b, w.Source)
	}
	return w.line(append(b, '}'))
}

// Upsert writes {"op":"upsert","table":..,"row":{col:val,...}}; a nil value is SQL NULL.
func (w *Writer) Upsert(table string, cols []string, vals [][]byte) error {
	b := append(w.buf[:0], `{"op":"upsert","table":`...)
	b = AppendString(b, table)
	b = append(b, `,"row":`...)
	b = appendObject(b, cols, vals)
	return w.line(append(b, '}'))
}

// Delete writes {"op":"delete","table":..,"key":{col:val,...}}.
func (w *Writer) Delete(table string, cols []string, vals [][]byte) error {
	b := append(w.buf[:0], `{"op":"delete","table":`...)
	b = AppendString(b, table)
	b = append(b, `,"key":`...)
	b = appendObject(b, cols, vals)
	return w.line(append(b, '}'))
}

// Rows writes {"op":"rows","table":..,"row":{col:val,...},"count":n}: the source holds n copies of
// the row (a table without a key, docs/delta-format.md).
func (w *Writer) Rows(table string, cols []string, vals [][]byte, count int64) error {
	b := append(w.buf[:0], `{"op":"rows","table":`...)
	b = AppendString(b, table)
	b = append(b, `,"row":`...)
	b = appendObject(b, cols, vals)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, count, 10)
	return w.line(append(b, '}'))
}

// Truncate writes {"op":"truncate","table":..}.
func (w *Writer) Truncate(table string) error {
	b := append(w.buf[:0], `{"op":"truncate","table":`...)
	b = AppendString(b, table)
	return w.line(append(b, '}'))
}

// RemovePartition writes {"op":"detach_partition","table":..,"partition":..}, or drop_partition
// when the source dropped it.
func (w *Writer) RemovePartition(table, partition string, dropped bool) error {
	op := OpDetachPartition
	if dropped {
		op = OpDropPartition
	}
	b := append(w.buf[:0], `{"op":`...)
	b = AppendString(b, op)
	b = append(b, `,"table":`...)
	b = AppendString(b, table)
	b = append(b, `,"partition":`...)
	b = AppendString(b, partition)
	return w.line(append(b, '}'))
}

// FlushPoint writes {"op":"flush"}.
func (w *Writer) FlushPoint() error { return w.line(append(w.buf[:0], `{"op":"flush"}`...)) }

// Commit writes {"op":"commit","to":..,"rows":n}.
func (w *Writer) Commit(to string, rows int64) error {
	b := append(w.buf[:0], `{"op":"commit","to":`...)
	b = AppendString(b, to)
	b = append(b, `,"rows":`...)
	b = strconv.AppendInt(b, rows, 10)
	return w.line(append(b, '}'))
}

// Flush writes buffered lines to the underlying writer.
func (w *Writer) Flush() error { return w.w.Flush() }

func (w *Writer) line(b []byte) error {
	b = append(b, '\n')
	w.buf = b
	_, err := w.w.Write(b)
	return err
}

func appendObject(b []byte, cols []string, vals [][]byte) []byte {
	b = append(b, '{')
	for i, c := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, c)
		b = append(b, ':')
		if vals[i] == nil {
			b = append(b, "null"...)
		} else {
			b = appendStringBytes(b, vals[i])
		}
	}
	return append(b, '}')
}

// AppendString appends s as a JSON string.
func AppendString(b []byte, s string) []byte { return appendStringBytes(b, []byte(s)) }

const hexDigits = "0123456789abcdef"

func appendStringBytes(b []byte, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
