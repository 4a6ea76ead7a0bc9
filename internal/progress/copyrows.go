package progress

import (
	"bytes"
	"encoding/binary"
)

// binarySignature opens COPY's binary format: the 11-byte signature, then the flags and the
// header extension length (int32 each), then the extension.
const binarySignatureLen = 11 + 4 + 4

// RowCounter counts the rows in a chunk's COPY data as it arrives, frame by frame, so a loader
// can show rows in flight before COPY reports its count. Frames may split rows anywhere.
type RowCounter struct {
	binary bool
	total  int64
	// binary format state
	pending []byte // bytes of an unfinished length field or of the header
	skip    int64  // bytes of the current field (or header extension) still to pass
	fields  int    // fields of the current tuple still to read; 0 between tuples
	header  bool   // the file header was passed
	last    bool   // the bytes being skipped are the current tuple's last field
	ended   bool   // the trailer (field count -1) was seen
}

// NewRowCounter returns a counter for COPY text (false) or binary (true) data.
func NewRowCounter(binaryFormat bool) *RowCounter { return &RowCounter{binary: binaryFormat} }

// Count takes the next bytes of the data and returns how many rows they completed.
func (c *RowCounter) Count(p []byte) int64 {
	var n int64
	if !c.binary {
		n = int64(bytes.Count(p, []byte{'\n'})) // text format escapes newlines inside values
	} else {
		n = c.countBinary(p)
	}
	c.total += n
	return n
}

// Total is the rows counted so far.
func (c *RowCounter) Total() int64 { return c.total }

// countBinary walks the tuples of binary COPY data: int16 field count (-1 ends the data), then per
// field an int32 length (-1 for NULL) and that many bytes.
func (c *RowCounter) countBinary(p []byte) int64 {
	var rows int64
	for len(p) > 0 && !c.ended {
		if c.skip > 0 {
			k := min(c.skip, int64(len(p)))
			c.skip -= k
			p = p[k:]
			if c.skip == 0 && c.last {
				c.last = false
				rows++ // the last field of a tuple ended
			}
			continue
		}
		need := 4
		switch {
		case !c.header:
			need = binarySignatureLen
		case c.fields == 0:
			need = 2
		}
		k := min(need-len(c.pending), len(p))
		c.pending = append(c.pending, p[:k]...)
		p = p[k:]
		if len(c.pending) < need {
			break
		}
		rows += c.field(c.pending)
		c.pending = c.pending[:0]
	}
	return rows
}

// field handles one complete header, field count or field length; it returns 1 when a tuple ended.
func (c *RowCounter) field(b []byte) int64 {
	switch {
	case !c.header:
		c.header = true
		c.skip = int64(binary.BigEndian.Uint32(b[15:19]))
	case c.fields == 0:
		nf := int16(binary.BigEndian.Uint16(b))
		if nf < 0 {
			c.ended = true
		} else if nf == 0 {
			return 1
		}
		c.fields = int(nf)
	default:
		c.fields--
		if l := int32(binary.BigEndian.Uint32(b)); l > 0 {
			c.skip, c.last = int64(l), c.fields == 0
			return 0
		}
		if c.fields == 0 {
			return 1 // NULL or empty last field
		}
	}
	return 0
}
