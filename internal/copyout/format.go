package copyout

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pgferry/pgferry/internal/stream"
)

// COPY format choices (--format).
const (
	FormatAuto   = "auto"
	FormatText   = stream.FormatText
	FormatBinary = stream.FormatBinary
)

// binarySignature starts every binary COPY stream.
var binarySignature = []byte("PGCOPY\n\377\r\n\000")

// binScanner follows the framing of a binary COPY stream as it arrives in pieces: header,
// tuples (int16 field count, then per field an int32 length, -1 for NULL, and the bytes), trailer
// (field count -1). It finds row boundaries and counts rows without holding whole rows.
type binScanner struct {
	state  int // what the next bytes are: one of the bs* constants
	hdr    []byte
	part   [4]byte
	have   int   // bytes of part filled
	fields int   // fields left in the current tuple
	skip   int64 // bytes of field data left
}

const (
	bsHeader = iota
	bsCount
	bsLen
	bsData
	bsEnd
)

var errBinaryFraming = errors.New("binary COPY data from the server is not framed as expected")

// feed scans p and returns how many tuples ended in it and the offset just after the last one
// (-1 when none did).
func (s *binScanner) feed(p []byte) (rows int64, lastEnd int, err error) {
	lastEnd = -1
	i := 0
	for i < len(p) {
		switch s.state {
		case bsHeader:
			if i, err = s.header(p, i); err != nil {
				return rows, lastEnd, err
			}
		case bsCount, bsLen:
			var whole bool
			if i, whole = s.integer(p, i); !whole {
				continue
			}
			if s.state == bsCount {
				n := int16(binary.BigEndian.Uint16(s.part[:2]))
				switch {
				case n == -1:
					s.state = bsEnd
				case n < 0:
					return rows, lastEnd, fmt.Errorf("%w: field count %d", errBinaryFraming, n)
				case n == 0:
					rows++
					lastEnd = i
				default:
					s.fields, s.state = int(n), bsLen
				}
				continue
			}
			l := int32(binary.BigEndian.Uint32(s.part[:4]))
			if l < -1 {
				return rows, lastEnd, fmt.Errorf("%w: field length %d", errBinaryFraming, l)
			}
			if l > 0 {
				s.skip, s.state = int64(l), bsData
				continue
			}
			s.endField(&rows, &lastEnd, i)
		case bsData:
			take := int64(len(p) - i)
			if take > s.skip {
				take = s.skip
			}
			i += int(take)
			s.skip -= take
			if s.skip == 0 {
				s.endField(&rows, &lastEnd, i)
			}
		case bsEnd:
			return rows, lastEnd, fmt.Errorf("%w: data after the trailer", errBinaryFraming)
		}
	}
	return rows, lastEnd, nil
}

// header takes the file header's bytes from p[i:] and returns the offset after them; the state
// moves on once the header (with its extension) is whole.
func (s *binScanner) header(p []byte, i int) (int, error) {
	need := 19
	if len(s.hdr) >= 19 {
		need += int(binary.BigEndian.Uint32(s.hdr[15:19]))
	}
	take := min(need-len(s.hdr), len(p)-i)
	s.hdr = append(s.hdr, p[i:i+take]...)
	i += take
	if len(s.hdr) == 19 {
		if !bytes.Equal(s.hdr[:11], binarySignature) {
			return i, fmt.Errorf("%w: bad signature", errBinaryFraming)
		}
		if ext := binary.BigEndian.Uint32(s.hdr[15:19]); ext > 1<<20 {
			return i, fmt.Errorf("%w: header extension of %d bytes", errBinaryFraming, ext)
		}
	}
	if len(s.hdr) >= 19 && len(s.hdr) == 19+int(binary.BigEndian.Uint32(s.hdr[15:19])) {
		s.state, s.hdr = bsCount, nil
	}
	return i, nil
}

// integer gathers the field count (2 bytes) or field length (4 bytes) into s.part from p[i:],
// across calls; it returns the offset after what it took and whether the integer is whole.
func (s *binScanner) integer(p []byte, i int) (int, bool) {
	want := 2
	if s.state == bsLen {
		want = 4
	}
	if s.have == 0 && len(p)-i >= want { // fast path: the whole integer is here
		copy(s.part[:], p[i:i+want])
		s.have = 0
		return i + want, true
	}
	for s.have < want && i < len(p) {
		s.part[s.have] = p[i]
		s.have++
		i++
	}
	if s.have < want {
		return i, false
	}
	s.have = 0
	return i, true
}

func (s *binScanner) endField(rows *int64, lastEnd *int, i int) {
	s.fields--
	if s.fields == 0 {
		*rows++
		*lastEnd = i
		s.state = bsCount
	} else {
		s.state = bsLen
	}
}

// complete reports whether the stream ended with its trailer.
func (s *binScanner) complete() bool { return s.state == bsEnd }
