package verify

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"

	"github.com/pgferry/pgferry/internal/catalog"
	"github.com/pgferry/pgferry/internal/ident"
)

// hashClient is the default hash: rows are read with COPY (binary where both servers give the
// same bytes, else text) and hashed by pgverify itself, so the servers do no more than a dump.
const hashClient = "client"

// runSeed seeds every hash of one run: both sides, the scan and the narrowing pass agree.
var runSeed = maphash.MakeSeed()

// copySelect is the COPY statement reading p's compared values, key columns first, then the
// other columns in the source's order, then extra (not hashed) expressions, for rows matching
// where.
func copySelect(p *pair, binaryFormat bool, where string, extra []string) string {
	cols := make([]string, 0, len(p.Cols)+len(extra))
	for _, c := range orderedCols(p) {
		cols = append(cols, cmpExpr(c, ""))
	}
	cols = append(cols, extra...)
	q := fmt.Sprintf("COPY (SELECT %s FROM %s WHERE %s) TO STDOUT", strings.Join(cols, ", "), p.from(), where)
	if binaryFormat {
		q += " (FORMAT binary)"
	}
	return q
}

// orderedCols is p's compared columns, key columns first.
func orderedCols(p *pair) []catalog.Column {
	out := append([]catalog.Column(nil), p.Key...)
	isKey := map[string]bool{}
	for _, k := range p.Key {
		isKey[k.Name] = true
	}
	for _, c := range p.Cols {
		if !isKey[c.Name] {
			out = append(out, c)
		}
	}
	return out
}

// rowScanner receives COPY data in pieces (an io.Writer for pgconn's CopyTo), cuts it into rows
// and calls onRow with the hash of the key fields, the hash of all hashed fields, and the extra
// fields (COPY text unescaped; valid during the call only).
type rowScanner struct {
	binary bool
	nk     int // key fields
	nh     int // hashed fields (key fields included)
	nExtra int // fields after the hashed ones, passed to onRow
	onRow  func(keyHash, rowHash uint64, extra [][]byte) error

	buf    []byte
	header bool // binary header consumed
	ended  bool // binary trailer seen
	extra  [][]byte
	rows   int64
}

var errCopyFraming = errors.New("COPY data from the server is not framed as expected")

func (s *rowScanner) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	var n int
	var err error
	if s.binary {
		n, err = s.scanBinary(s.buf)
	} else {
		n, err = s.scanText(s.buf)
	}
	if err != nil {
		return 0, err
	}
	rest := copy(s.buf, s.buf[n:])
	s.buf = s.buf[:rest]
	return len(p), nil
}

// finish checks that the data ended on a row boundary.
func (s *rowScanner) finish() error {
	if len(s.buf) != 0 || (s.binary && !s.ended) {
		return fmt.Errorf("%w: it ended inside a row", errCopyFraming)
	}
	return nil
}

// scanText consumes the complete lines of b and returns how many bytes it used.
func (s *rowScanner) scanText(b []byte) (int, error) {
	used := 0
	for {
		line := b[used:]
		end := bytes.IndexByte(line, '\n')
		if end < 0 {
			return used, nil
		}
		line = line[:end]
		keyEnd, hashEnd := -1, len(line)
		field := 0
		s.extra = s.extra[:0]
		start := 0
		for i := 0; i <= len(line); i++ {
			if i < len(line) && line[i] != '\t' {
				continue
			}
			field++
			if field == s.nk {
				keyEnd = i
			}
			if field == s.nh {
				hashEnd = i
			}
			if field > s.nh {
				s.extra = append(s.extra, s.unescape(line[start:i]))
			}
			start = i + 1
		}
		if field != s.nh+s.nExtra || keyEnd < 0 && s.nk > 0 {
			return 0, fmt.Errorf("%w: a row has %d fields", errCopyFraming, field)
		}
		if s.nk == 0 {
			keyEnd = 0
		}
		if err := s.onRow(maphash.Bytes(runSeed, line[:keyEnd]), maphash.Bytes(runSeed, line[:hashEnd]), s.extra); err != nil {
			return 0, err
		}
		s.rows++
		used += end + 1
	}
}

// unescape decodes one field of COPY's text format (\N stays as it is: a NULL key cannot occur).
func (s *rowScanner) unescape(f []byte) []byte {
	if bytes.IndexByte(f, '\\') < 0 {
		return f
	}
	out := make([]byte, 0, len(f))
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' || i+1 == len(f) {
			out = append(out, c)
			continue
		}
		i++
		c = f[i]
		if e, ok := copyEscapes[c]; ok {
			out = append(out, e)
			continue
		}
		switch c {
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(f) && isHex(f[i+1]) {
				i++
				v = v*16 + hexVal(f[i])
				n++
			}
			if n == 0 {
				out = append(out, 'x')
			} else {
				out = append(out, byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 1; n < 3 && i+1 < len(f) && f[i+1] >= '0' && f[i+1] <= '7'; n++ {
				i++
				v = v*8 + int(f[i]-'0')
			}
			out = append(out, byte(v))
		default:
			out = append(out, c)
		}
	}
	return out
}

// copyEscapes are COPY text's one-letter escapes.
var copyEscapes = map[byte]byte{'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}

// binaryHeaderLen is the fixed part of a binary COPY header: signature, flags, extension length.
const binaryHeaderLen = 11 + 4 + 4

// scanBinary consumes the complete tuples of b and returns how many bytes it used. A row's hash
// leaves out its field count: extra fields must not change it.
func (s *rowScanner) scanBinary(b []byte) (int, error) {
	used := 0
	if !s.header {
		if len(b) < binaryHeaderLen {
			return 0, nil
		}
		if string(b[:11]) != "PGCOPY\n\377\r\n\000" {
			return 0, fmt.Errorf("%w: bad binary signature", errCopyFraming)
		}
		ext := int(binary.BigEndian.Uint32(b[15:19]))
		if len(b) < binaryHeaderLen+ext {
			return 0, nil
		}
		used = binaryHeaderLen + ext
		s.header = true
	}
	for {
		if s.ended {
			if used != len(b) {
				return 0, fmt.Errorf("%w: data after the trailer", errCopyFraming)
			}
			return used, nil
		}
		t := b[used:]
		if len(t) < 2 {
			return used, nil
		}
		nf := int(int16(binary.BigEndian.Uint16(t)))
		if nf == -1 {
			s.ended = true
			used += 2
			continue
		}
		if nf != s.nh+s.nExtra {
			return 0, fmt.Errorf("%w: a row has %d fields", errCopyFraming, nf)
		}
		off := 2
		keyEnd, hashEnd := 2, 2
		s.extra = s.extra[:0]
		complete := true
		for f := 0; f < nf; f++ {
			if len(t) < off+4 {
				complete = false
				break
			}
			l := int(int32(binary.BigEndian.Uint32(t[off:])))
			off += 4
			if l > 0 {
				if len(t) < off+l {
					complete = false
					break
				}
			}
			if f >= s.nh {
				if l < 0 {
					s.extra = append(s.extra, nil)
				} else {
					s.extra = append(s.extra, t[off:off+l])
				}
			}
			if l > 0 {
				off += l
			}
			if f+1 == s.nk {
				keyEnd = off
			}
			if f+1 == s.nh {
				hashEnd = off
			}
		}
		if !complete {
			return used, nil
		}
		if err := s.onRow(maphash.Bytes(runSeed, t[2:keyEnd]), maphash.Bytes(runSeed, t[2:hashEnd]), s.extra); err != nil {
			return 0, err
		}
		s.rows++
		used += off
	}
}

// eLiteral quotes s as an escape string literal, right whatever standard_conforming_strings is.
func eLiteral(s string) string {
	return "E" + ident.Literal(strings.ReplaceAll(s, `\`, `\\`))
}
