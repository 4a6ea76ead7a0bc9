package deltarec

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Raw is one record as decoded by Reader.Scan, without maps: the columns of "row" (upsert) or
// "key" (delete) in line order. Its slices and values are reused by the next Scan.
type Raw struct {
	Op, From, To, At, Table string
	Partition               string   // detach_partition, drop_partition: the partition
	Cols                    []string // column names of "row" or "key", in line order
	Vals                    [][]byte // their values; nil is SQL NULL
	Rows                    int64    // commit: "rows"
	HasRows                 bool     // "rows" was given
	Count                   int64    // rows: "count"
	Source                  string   // begin: the source database's identity (dbconn.Identity.Token)
	HasCount                bool     // "count" was given
	HasRow, HasKey          bool     // "row" / "key" was given (and not null)

	scratch []byte  // unescaped values
	offs    []span  // where each value lives while the line is parsed
	dec     decoder // reused parser state
}

// span locates a value: in the line (fromLine) or in scratch; null when isNull.
type span struct {
	start, end       int
	fromLine, isNull bool
}

// Record converts r to a map-based Record (copies every value).
func (r *Raw) Record() *Record {
	rec := &Record{Op: r.Op, From: r.From, To: r.To, At: r.At, Table: r.Table, Source: r.Source, Partition: r.Partition}
	if r.HasRows {
		n := r.Rows
		rec.Rows = &n
	}
	if r.HasCount {
		n := r.Count
		rec.Count = &n
	}
	if r.HasRow || r.HasKey {
		m := make(map[string]*string, len(r.Cols))
		for i, c := range r.Cols {
			if r.Vals[i] == nil {
				m[c] = nil
			} else {
				s := string(r.Vals[i])
				m[c] = &s
			}
		}
		if r.HasRow {
			rec.Row = m
		} else {
			rec.Key = m
		}
	}
	return rec
}

// errSyntax is wrapped with the byte offset where the line stops being valid JSON.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.off+1) }

// decoder parses one line into a Raw; prev* fields intern strings that repeat from line to line.
type decoder struct {
	b   []byte
	i   int
	raw *Raw
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (d *decoder) ws() {
	for d.i < len(d.b) && isSpace(d.b[d.i]) {
		d.i++
	}
}

func (d *decoder) fail(msg string) error { return &syntaxError{off: d.i, msg: msg} }

// expect consumes byte c after optional whitespace.
func (d *decoder) expect(c byte) error {
	d.ws()
	if d.i >= len(d.b) {
		return d.fail(fmt.Sprintf("unexpected end of line, want %q", c))
	}
	if d.b[d.i] != c {
		return d.fail(fmt.Sprintf("invalid character %q, want %q", d.b[d.i], c))
	}
	d.i++
	return nil
}

// peekNull consumes a JSON null if one comes next.
func (d *decoder) peekNull() (bool, error) {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == 'n' {
		if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
			d.i += 4
			return true, nil
		}
		return false, d.fail("invalid literal")
	}
	return false, nil
}

// str parses a JSON string. When it holds no escapes and only valid UTF-8 it returns a slice of
// the line (inLine); otherwise it appends the unescaped bytes to dst and returns their bounds.
func (d *decoder) str(dst []byte) (val []byte, inLine bool, out []byte, err error) {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		if d.i >= len(d.b) {
			return nil, false, dst, d.fail("unexpected end of line, want a string")
		}
		return nil, false, dst, d.fail(fmt.Sprintf("invalid character %q, want a string", d.b[d.i]))
	}
	d.i++
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			v := d.b[start:d.i]
			d.i++
			return v, true, dst, nil
		case c == '\\':
			return d.strSlow(start, dst)
		case c < 0x20:
			return nil, false, dst, d.fail("control character in string")
		case c < utf8.RuneSelf:
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && size == 1 {
				return d.strSlow(start, dst)
			}
			d.i += size
		}
	}
	return nil, false, dst, d.fail("unterminated string")
}

// strSlow decodes a string with escapes or invalid UTF-8 (replaced by U+FFFD, as encoding/json does).
func (d *decoder) strSlow(start int, dst []byte) ([]byte, bool, []byte, error) {
	d.i = start
	from := len(dst)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return dst[from:], false, dst, nil
		case c < 0x20:
			return nil, false, dst, d.fail("control character in string")
		case c == '\\':
			if d.i+1 >= len(d.b) {
				return nil, false, dst, d.fail("unterminated escape")
			}
			e := d.b[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return nil, false, dst, d.fail(`invalid \u escape`)
				}
				if utf16.IsSurrogate(r) {
					r2 := utf8.RuneError
					if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
						save := d.i
						d.i += 2
						lo, ok := d.hex4()
						if ok {
							if dec := utf16.DecodeRune(r, lo); dec != utf8.RuneError {
								r2 = dec
							} else {
								d.i = save
							}
						} else {
							d.i = save
						}
					}
					r = r2
				}
				dst = utf8.AppendRune(dst, r)
			default:
				d.i -= 1
				return nil, false, dst, d.fail(fmt.Sprintf("invalid escape %q", e))
			}
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, d.b[d.i:d.i+size]...)
			}
			d.i += size
		}
	}
	return nil, false, dst, d.fail("unterminated string")
}

func (d *decoder) hex4() (rune, bool) {
	if len(d.b)-d.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	d.i += 4
	return r, true
}

// textField parses a string-or-null field; prev is returned instead of a new string when equal.
func (d *decoder) textField(prev string) (string, error) {
	if null, err := d.peekNull(); null || err != nil {
		return "", err
	}
	v, _, scratch, err := d.str(d.raw.scratch)
	d.raw.scratch = scratch
	if err != nil {
		return "", err
	}
	if string(v) == prev {
		return prev, nil
	}
	for _, o := range opNames {
		if string(v) == o {
			return o, nil
		}
	}
	return string(v), nil
}

var opNames = []string{OpBegin, OpUpsert, OpDelete, OpTruncate, OpCommit, OpFlush, OpRows, OpDetachPartition, OpDropPartition}

// decode parses one JSON object line into raw (reset first). Column names are interned against
// the previous line's.
func decode(line []byte, raw *Raw) error {
	prev := prevLine{cols: raw.Cols, table: raw.Table, op: raw.Op}
	*raw = Raw{Cols: raw.Cols[:0], Vals: raw.Vals[:0], scratch: raw.scratch[:0], offs: raw.offs[:0]}
	d := &raw.dec
	*d = decoder{b: line, raw: raw}
	if err := d.expect('{'); err != nil {
		return err
	}
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
	} else if err := d.fields(prev); err != nil {
		return err
	}
	d.ws()
	if d.i != len(d.b) {
		return errors.New("more than one JSON value on the line")
	}
	if raw.HasRow && raw.HasKey {
		// Both objects were parsed into the same column list: Validate rejects the record anyway.
		raw.Cols, raw.Vals = raw.Cols[:0], raw.Vals[:0]
	}
	for _, o := range raw.offs {
		switch {
		case o.isNull:
			raw.Vals = append(raw.Vals, nil)
		case o.fromLine:
			raw.Vals = append(raw.Vals, line[o.start:o.end:o.end])
		default:
			raw.Vals = append(raw.Vals, raw.scratch[o.start:o.end:o.end])
		}
	}
	return nil
}

// prevLine is what decode interns against: the previous line's columns, table and op.
type prevLine struct {
	cols      []string
	table, op string
}

// fields parses the "key": value pairs of a non-empty object up to and including its '}'.
func (d *decoder) fields(prev prevLine) error {
	raw := d.raw
	var seen uint16
	for {
		k, _, scratch, err := d.str(raw.scratch)
		raw.scratch = scratch
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		bit, err := d.field(k, prev)
		if err != nil {
			return err
		}
		if seen&bit != 0 {
			return d.fail(fmt.Sprintf("field %q given twice", k))
		}
		seen |= bit
		d.ws()
		if d.i >= len(d.b) {
			return d.fail("unexpected end of line, want ',' or '}'")
		}
		if d.b[d.i] == '}' {
			d.i++
			return nil
		}
		if d.b[d.i] != ',' {
			return d.fail(fmt.Sprintf("invalid character %q after a field, want ',' or '}'", d.b[d.i]))
		}
		d.i++
	}
}

// field parses the value of field k into raw and returns the field's bit, to refuse repeats.
func (d *decoder) field(k []byte, prev prevLine) (bit uint16, err error) {
	raw := d.raw
	switch string(k) {
	case "op":
		bit = 1
		raw.Op, err = d.textField(prev.op)
	case "from":
		bit = 2
		raw.From, err = d.textField("")
	case "to":
		bit = 4
		raw.To, err = d.textField("")
	case "at":
		bit = 8
		raw.At, err = d.textField("")
	case "table":
		bit = 16
		raw.Table, err = d.textField(prev.table)
	case "row":
		bit = 32
		raw.HasRow, err = d.object(prev.cols)
	case "key":
		bit = 64
		raw.HasKey, err = d.object(prev.cols)
	case "rows":
		bit = 128
		raw.Rows, raw.HasRows, err = d.integer(`"rows"`)
	case "count":
		bit = 256
		raw.Count, raw.HasCount, err = d.integer(`"count"`)
	case "source":
		bit = 512
		raw.Source, err = d.textField("")
	case "partition":
		bit = 1024
		raw.Partition, err = d.textField("")
	default:
		return 0, d.fail(fmt.Sprintf("unknown field %q", k))
	}
	return bit, err
}

// object parses {"col": "value"|null, ...} or null into raw.Cols and raw.offs.
func (d *decoder) object(prevCols []string) (bool, error) {
	if null, err := d.peekNull(); null || err != nil {
		return false, err
	}
	if err := d.expect('{'); err != nil {
		return false, err
	}
	raw := d.raw
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return true, nil
	}
	for {
		k, _, scratch, err := d.str(raw.scratch)
		raw.scratch = scratch
		if err != nil {
			return false, err
		}
		n := len(raw.Cols)
		if n < len(prevCols) && prevCols[n] == string(k) {
			raw.Cols = append(raw.Cols, prevCols[n])
		} else {
			raw.Cols = append(raw.Cols, string(k))
		}
		if err := d.expect(':'); err != nil {
			return false, err
		}
		null, err := d.peekNull()
		if err != nil {
			return false, err
		}
		if null {
			raw.offs = append(raw.offs, span{isNull: true})
		} else {
			from := len(raw.scratch)
			v, inLine, scratch, err := d.str(raw.scratch)
			raw.scratch = scratch
			if err != nil {
				return false, err
			}
			if inLine {
				start := d.i - 1 - len(v)
				raw.offs = append(raw.offs, span{start: start, end: start + len(v), fromLine: true})
			} else {
				raw.offs = append(raw.offs, span{start: from, end: len(raw.scratch)})
			}
		}
		d.ws()
		if d.i >= len(d.b) {
			return false, d.fail("unexpected end of line inside an object")
		}
		if d.b[d.i] == '}' {
			d.i++
			return true, nil
		}
		if d.b[d.i] != ',' {
			return false, d.fail(fmt.Sprintf("invalid character %q in an object, want ',' or '}'", d.b[d.i]))
		}
		d.i++
	}
}

// integer parses an integer field (commit's "rows", rows' "count"); null leaves it unset.
func (d *decoder) integer(name string) (int64, bool, error) {
	if null, err := d.peekNull(); null || err != nil {
		return 0, false, err
	}
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	n, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
	if err != nil || (d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E')) {
		d.i = start
		return 0, false, d.fail(name + " is not an integer")
	}
	return n, true, nil
}

// ValidateRaw checks that a record has the fields its op needs and no others (as Validate).
func ValidateRaw(r *Raw) error {
	row, key := r.HasRow, r.HasKey
	if r.HasCount && r.Op != OpRows {
		return errors.New(`only rows takes "count"`)
	}
	if r.Source != "" && r.Op != OpBegin {
		return errors.New(`only begin takes "source"`)
	}
	if err := validatePartition(r.Op, r.Table, r.Partition, row || key || r.From != "" || r.To != "" || r.HasRows); err != nil || r.Partition != "" {
		return err
	}
	switch r.Op {
	case OpRows:
		if r.Table == "" || !row || len(r.Cols) == 0 || key || !r.HasCount || r.Count < 0 {
			return errors.New(`rows needs "table", a non-empty "row" and a "count" of 0 or more`)
		}
	case OpBegin:
		if r.To == "" || r.Table != "" || row || key {
			return errors.New(`begin needs "from" and "to" and nothing else`)
		}
	case OpCommit:
		if r.To == "" || r.Table != "" || row || key {
			return errors.New(`commit needs "to" and nothing else`)
		}
	case OpUpsert:
		if r.Table == "" || !row || len(r.Cols) == 0 || key {
			return errors.New(`upsert needs "table" and a non-empty "row"`)
		}
	case OpDelete:
		if r.Table == "" || !key || len(r.Cols) == 0 || row {
			return errors.New(`delete needs "table" and a non-empty "key"`)
		}
		for i, v := range r.Vals {
			if v == nil {
				return fmt.Errorf("delete key column %q is null", r.Cols[i])
			}
		}
	case OpTruncate:
		if r.Table != "" && !row && !key {
			return nil
		}
		return errors.New(`truncate needs "table" only`)
	case OpFlush:
		if r.Table != "" || row || key || r.To != "" {
			return errors.New(`flush takes no fields`)
		}
	case "":
		return errors.New(`missing "op"`)
	default:
		return fmt.Errorf("unknown op %q", r.Op)
	}
	return nil
}
